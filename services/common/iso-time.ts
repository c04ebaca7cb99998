/**
 * Whether `text` is a time as `Date.prototype.toISOString` writes it (what the store writes: UTC,
 * milliseconds, 24 characters). Such texts sort as their times do, and their parts sit at fixed
 * places, so hot paths can compare or reformat them without `Date.parse`. Pure.
 */
export const isCanonicalTime = (text: string): boolean =>
  text.length === 24 && text.charCodeAt(10) === 84 /* T */ && text.charCodeAt(19) === 46 /* . */ && text.charCodeAt(23) === 90; /* Z */
