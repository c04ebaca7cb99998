export type { Runtime, RuntimeTaskState } from './runtime';
export { ExecRuntime, type ExecRuntimeOptions } from './exec-runtime';
export { detectCgroups, removeCgroupParent, type CgroupLayout } from './cgroups';
export { IMAGE_FORMS, parseExecImage } from './exec-spec';
