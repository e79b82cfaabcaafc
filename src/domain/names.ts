import { badInput } from './errors.js';

/**
 * Characters a name may not carry: C0/C1 controls (NUL included), and the bidirectional controls (U+202A–U+202E,
 * U+2066–U+2069, U+200E/U+200F, U+061C) that let "invoice‮txt.exe" display as something else in a key list, an
 * audit log or an alert. Refused rather than stripped, so what is stored is what the person typed.
 */
const FORBIDDEN = /[\u0000-\u001f\u007f-\u009f\u061c\u200e\u200f\u202a-\u202e\u2066-\u2069]/u;
/** Characters that show nothing on their own: whitespace, zero-width and other format characters (Cf). */
const INVISIBLE = /^[\s\p{Cf}]*$/u;

/**
 * The one name rule (keys, teams, tokens, users): trimmed, 1 to `max` characters, at least one visible character,
 * no control or direction-override characters. `label` names the field in the message ("A key name").
 */
export function validateName(raw: string, label: string, max = 100): string {
  const name = raw.trim();
  if (name.length < 1 || name.length > max) throw badInput(`${label} is 1 to ${max} characters.`);
  if (FORBIDDEN.test(name)) throw badInput(`${label} cannot contain control or text-direction characters.`);
  if (INVISIBLE.test(name)) throw badInput(`${label} needs at least one visible character.`);
  return name;
}
