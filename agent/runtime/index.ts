export type { Runtime, RuntimeTaskState } from './runtime';
export { ExecRuntime, type ExecRuntimeOptions } from './exec-runtime';
export { detectCgroups, removeCgroupParent, type CgroupLayout } from './cgroups';
export { IMAGE_FORMS, parseExecImage } from './exec-spec';
export { CrunRuntime, type CrunRuntimeOptions, type TaskImages } from './crun-runtime';
export { RuntimeRouter, planRuntimeKind } from './runtime-router';
