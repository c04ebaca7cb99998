import * as grpc from '@grpc/grpc-js';
import { fromServiceError, MAX_STATUS_DETAILS, toServiceError } from '../../services/api/grpc-errors';
import { invalidArgument } from '../../services/common/errors';

test('a status message is cut to MAX_STATUS_DETAILS characters, so it fits a client trailer; a short one is kept', () => {
  const long = toServiceError(invalidArgument(`invalid name ${'x'.repeat(70000)}`));
  expect(long.code).toBe(grpc.status.INVALID_ARGUMENT);
  expect(long.details).toHaveLength(MAX_STATUS_DETAILS);
  expect(long.details?.endsWith('…')).toBe(true);
  expect(toServiceError(invalidArgument('bad')).details).toBe('bad');
});

test('a request refused as over the size limit is the caller\'s bad input, with the limit in its message', () => {
  const err = fromServiceError({ code: grpc.status.RESOURCE_EXHAUSTED, details: 'Received message larger than max (5242958 vs 4194304)' });
  expect(err.kind).toBe('InvalidArgument');
  expect(err.message).toBe('Received message larger than max (5242958 vs 4194304)');
});
