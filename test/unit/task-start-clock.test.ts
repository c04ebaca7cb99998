import { metrics } from '../../services/metrics/metrics';
import { TaskStartClock } from '../../services/metrics/task-start-clock';
import { TaskState } from '../../services/gen/swarmlet/v1/types';

const S = TaskState;

/** The histogram's count and sum now. */
async function observed(): Promise<{ count: number; sum: number }> {
  const values = (await metrics.taskStartSeconds.get()).values;
  return { count: values.find((v) => v.metricName?.endsWith('_count'))?.value ?? 0, sum: values.find((v) => v.metricName?.endsWith('_sum'))?.value ?? 0 };
}

describe('TaskStartClock', () => {
  let now = 0;
  const clock = () => new TaskStartClock(() => now);
  beforeEach(() => {
    metrics.taskStartSeconds.reset();
    now = 1000;
  });

  test('assigned, then reported through the states to running: one observation of the time between', async () => {
    const c = clock();
    c.assigned('t1');
    now = 1500;
    c.reported('t1', undefined, S.TASK_STATE_ACCEPTED);
    c.reported('t1', S.TASK_STATE_ACCEPTED, S.TASK_STATE_STARTING);
    now = 3250;
    c.reported('t1', S.TASK_STATE_STARTING, S.TASK_STATE_RUNNING);
    c.reported('t1', S.TASK_STATE_RUNNING, S.TASK_STATE_RUNNING);
    expect(await observed()).toEqual({ count: 1, sum: 2.25 });
  });

  test('a task adopted after a restart (first reported running) is not counted', async () => {
    const c = clock();
    c.assigned('t1');
    c.reported('t1', undefined, S.TASK_STATE_RUNNING);
    expect((await observed()).count).toBe(0);
  });

  test('a task that fails before it runs is forgotten, and never counted later', async () => {
    const c = clock();
    c.assigned('t1');
    c.reported('t1', S.TASK_STATE_STARTING, S.TASK_STATE_FAILED);
    c.reported('t1', S.TASK_STATE_STARTING, S.TASK_STATE_RUNNING);
    c.assigned('t2');
    c.forget('t2');
    c.reported('t2', S.TASK_STATE_STARTING, S.TASK_STATE_RUNNING);
    expect((await observed()).count).toBe(0);
  });
});
