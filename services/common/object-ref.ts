import { invalidArgument } from './errors';

/** The longest reference (id, id prefix or name) the API looks up: longer than any name or id can be. */
export const MAX_REF_LENGTH = 255;

/** Refuses a reference longer than any object's name or id, before it is looked up or repeated in a message. */
export function checkRefLength(what: string, ref: string): void {
  if (ref.length > MAX_REF_LENGTH) throw invalidArgument(`${what} reference is too long: ${ref.length} characters, at most ${MAX_REF_LENGTH}`);
}
