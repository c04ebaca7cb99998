import { invalidArgument } from './errors';

/** The longest reference (id, id prefix or name) the API looks up: longer than any name or id can be. */
export const MAX_REF_LENGTH = 255;

/**
 * Refuses a reference no object can have, before it is looked up or repeated in a message: longer
 * than any name or id, or with a control character (a newline would split the one-line error).
 */
export function checkRef(what: string, ref: string): void {
  if (ref.length > MAX_REF_LENGTH) throw invalidArgument(`${what} reference is too long: ${ref.length} characters, at most ${MAX_REF_LENGTH}`);
  if (/[\u0000-\u001f\u007f]/.test(ref)) throw invalidArgument(`${what} reference ${JSON.stringify(ref)} has a control character`);
}
