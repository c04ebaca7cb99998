/**
 * the secret and config half of the Control API. A value is sealed the moment it arrives,
 * never logged, never returned for a secret (a config's inspect may show it, as docker's does).
 */
import { Logger, componentLogger } from '../services/common/logger';
import { unary } from '../services/api/handlers';
import { ControlServer, CreateConfigRequest, CreateSecretRequest, GetConfigRequest, GetSecretRequest, RemoveConfigRequest, RemoveSecretRequest } from '../services/gen/swarmlet/v1/control';
import { newRandomId } from '../services/pki/ca';
import { checkUnused, resolveFileObject, validateFileObject, withoutData } from './file-object-plans';
import { openFileData, SealKeySource, sealFileData } from './service-secrets';
import { FileObjectKind, FileObjectOf, Store } from './store/store';

export interface FileObjectControlDeps {
  /** Reads what any manager has just written (see ControlDeps). */
  store: Store;
  log: Logger;
  sealKey?: SealKeySource;
}

type FileObjectHandlers = Pick<ControlServer, 'createSecret' | 'listSecrets' | 'getSecret' | 'removeSecret' | 'createConfig' | 'listConfigs' | 'getConfig' | 'removeConfig'>;

const byName = (a: { spec?: { name: string } }, b: { spec?: { name: string } }) => (a.spec?.name ?? '').localeCompare(b.spec?.name ?? '');

export function fileObjectControl(deps: FileObjectControlDeps): FileObjectHandlers {
  const { store } = deps;
  const log = componentLogger(deps.log, 'control');

  async function create<K extends FileObjectKind>(kind: K, spec: FileObjectOf[K]['spec'], data: Uint8Array): Promise<FileObjectOf[K]> {
    const name = spec?.name ?? '';
    validateFileObject(kind, name, data);
    const id = newRandomId();
    const obj = { id, spec: { name, labels: { ...(spec?.labels ?? {}) } }, dataSealed: sealFileData(deps.sealKey, kind, id, data) } as FileObjectOf[K];
    const created = await store.createFileObject(kind, obj);
    log.info({ [`${kind}Id`]: id, name }, `${kind} created`);
    return withoutData(created);
  }

  const find = async <K extends FileObjectKind>(kind: K, ref: string): Promise<FileObjectOf[K]> => resolveFileObject(kind, await store.listFileObjects(kind), ref);

  async function remove(kind: FileObjectKind, ref: string): Promise<void> {
    const obj = await find(kind, ref);
    const { services, revision } = await store.listServicesAt();
    checkUnused(kind, obj, services);
    await store.deleteFileObject(kind, obj, revision);
    log.info({ [`${kind}Id`]: obj.id, name: obj.spec?.name }, `${kind} removed`);
  }

  return {
    createSecret: unary(async (req: CreateSecretRequest) => create('secret', req.spec, req.data)),
    listSecrets: unary(async () => ({ secrets: (await store.listFileObjects('secret')).sort(byName).map(withoutData) })),
    getSecret: unary(async (req: GetSecretRequest) => withoutData(await find('secret', req.secret))),
    removeSecret: unary(async (req: RemoveSecretRequest) => {
      await remove('secret', req.secret);
      return {};
    }),
    createConfig: unary(async (req: CreateConfigRequest) => create('config', req.spec, req.data)),
    listConfigs: unary(async () => ({ configs: (await store.listFileObjects('config')).sort(byName).map(withoutData) })),
    getConfig: unary(async (req: GetConfigRequest) => {
      const config = await find('config', req.config);
      return { config: withoutData(config), data: openFileData(deps.sealKey, 'config', config) };
    }),
    removeConfig: unary(async (req: RemoveConfigRequest) => {
      await remove('config', req.config);
      return {};
    }),
  };
}
