import { badInput } from '../domain/errors.js';
import { describePolicy, MAX_POLICY_EXPIRY_DAYS, MAX_POLICY_KEY_AGE_DAYS, type EffectivePolicy, type KeyPolicy, type PolicyRule } from '../domain/keys/key-policy.js';
import type { ViolatingKey } from '../domain/keys/key-policy.service.js';
import type { FormBody } from './context.js';
import { text } from './forms.js';

type SwitchField = { [F in keyof KeyPolicy]: KeyPolicy[F] extends boolean ? F : never }[keyof KeyPolicy];
type DaysField = { [F in keyof KeyPolicy]: KeyPolicy[F] extends number | null ? F : never }[keyof KeyPolicy];

/**
 * The guard-rails on new keys as the portal's forms show them (the team page and /admin/key-policy): the one list of
 * rules. A switch is a checkbox named after the policy field; a "days" rule is a checkbox `<field>On` with a number
 * field `<field>`. A new rule of the policy is one more entry here (and a label in VIOLATION_LABELS).
 */
export const KEY_POLICY_RULES: ReadonlyArray<
  | { kind: 'switch'; field: SwitchField; label: string; hint: string }
  | { kind: 'days'; field: DaysField; label: string; hint: string; max: number; /** The word before the number, in the form and the read-only view (default "within"). */ word?: 'within' | 'after' }
> = [
  { kind: 'switch', field: 'requireLimit', label: 'Every new key needs a spending limit', hint: 'A key without one could spend the whole balance.' },
  {
    kind: 'days', field: 'maxExpiryDays', label: 'Every new key expires', max: MAX_POLICY_EXPIRY_DAYS,
    hint: `At most this many days ahead (1 to ${MAX_POLICY_EXPIRY_DAYS}): a forgotten key stops working by itself.`,
  },
  { kind: 'switch', field: 'uniqueNames', label: 'Key names are unique per owner', hint: 'One key per tool: a leaked key is easy to find and rotate.' },
  {
    kind: 'days', field: 'maxKeyAgeDays', label: 'Keys are due for rotation', max: MAX_POLICY_KEY_AGE_DAYS, word: 'after',
    hint: `This many days after they are made (1 to ${MAX_POLICY_KEY_AGE_DAYS}). Older keys keep working: they are marked “rotation due”, warned about (key.rotation_due), and rotated by themselves if they ask for scheduled rotation.`,
  },
];

/** What a key that breaks a rule is listed with ("which rule"), in words. */
export const VIOLATION_LABELS: Record<PolicyRule, string> = {
  limit_required: 'No spending limit',
  expiry_required: 'No expiry',
  expiry_too_far: 'Expires too far ahead',
  name_taken: 'Name used by another key of its owner',
};

/** The form's values as sent back into the form: checkboxes as booleans, days as typed. */
export type PolicyFormValues = Record<string, string | boolean>;

export function policyFormValues(policy: KeyPolicy): PolicyFormValues {
  const values: PolicyFormValues = {};
  for (const rule of KEY_POLICY_RULES) {
    if (rule.kind === 'switch') values[rule.field] = policy[rule.field];
    else {
      const days = policy[rule.field];
      values[`${rule.field}On`] = days !== null;
      values[rule.field] = days === null ? '' : String(days);
    }
  }
  return values;
}

export function policyFormValuesOf(body: FormBody): PolicyFormValues {
  const values: PolicyFormValues = {};
  for (const rule of KEY_POLICY_RULES) {
    if (rule.kind === 'switch') values[rule.field] = text(body, rule.field) === 'on';
    else {
      values[`${rule.field}On`] = text(body, `${rule.field}On`) === 'on';
      values[rule.field] = text(body, rule.field).trim();
    }
  }
  return values;
}

/**
 * The whole policy from the form: an unticked box switches its rule off. A ticked "days" rule needs a whole number;
 * its range is the domain's to check (KeyPolicyService), so every door refuses the same values.
 */
export function policyFromForm(values: PolicyFormValues): KeyPolicy {
  const policy: Record<string, boolean | number | null> = {};
  for (const rule of KEY_POLICY_RULES) {
    if (rule.kind === 'switch') policy[rule.field] = values[rule.field] === true;
    else if (values[`${rule.field}On`] !== true) policy[rule.field] = null;
    else {
      const raw = String(values[rule.field] ?? '');
      if (!/^\d{1,6}$/.test(raw)) {
        const message = `Enter a whole number of days from 1 to ${rule.max}, or untick the rule.`;
        throw badInput(message, { [rule.field]: message });
      }
      policy[rule.field] = Number(raw);
    }
  }
  return policy as unknown as KeyPolicy;
}

/** The rules one after the other, for people who see them without changing them. */
export function policyStates(policy: KeyPolicy): Array<{ label: string; state: string }> {
  return KEY_POLICY_RULES.map((rule) => {
    if (rule.kind === 'switch') return { label: rule.label, state: policy[rule.field] ? 'On' : 'Off' };
    const days = policy[rule.field];
    return { label: rule.label, state: days === null ? 'Off' : `${rule.word === 'after' ? 'After' : 'Within'} ${days} day${days === 1 ? '' : 's'}` };
  });
}

/** A violating key as a row of the list: the key (linked by the view), and each broken rule in words. */
export function violationRows(list: ViolatingKey[]) {
  return list.map(({ key, violations }) => ({
    key,
    rules: violations.map((v) => ({ rule: v.rule, label: VIOLATION_LABELS[v.rule] })),
  }));
}

/** A refused form shown again: what was sent, and the domain's message at its field. */
export interface PolicyFormState {
  values: PolicyFormValues;
  errors: Readonly<Record<string, string>>;
  error: string | null;
}

/**
 * What views/partials/_key-policy.eta shows: the policy as a form (for those who set it) or read-only, the sentence in
 * force, and the keys that break it (null: the viewer sees no keys there).
 */
export function policySection(input: {
  scope: 'team' | 'installation';
  policy: KeyPolicy;
  inForce: EffectivePolicy;
  editable: boolean;
  action: string;
  violating: ViolatingKey[] | null;
  /** Whose keys the list holds: everyone's in the scope, or only the viewer's (a team member). */
  ownKeysOnly?: boolean;
  emails: Readonly<Record<string, string>>;
  teamNames?: Readonly<Record<string, string>>;
  form?: PolicyFormState | null;
  /** Say "saved" inside the section, not only in the page's flash (the team page's 303 lands on #key-policy). */
  savedNoticeHere?: boolean;
}) {
  const team = input.scope === 'team';
  return {
    intro: team
      ? 'Rules every new key of this team must meet, set by its owners and admins. Existing keys are listed below, never changed.'
      : 'Rules every new key of the installation must meet, personal and team keys alike. Existing keys are listed below, never changed.',
    keysWord: team ? 'team keys' : 'keys',
    inForce: describePolicy(input.inForce),
    editable: input.editable,
    action: input.action,
    rules: KEY_POLICY_RULES,
    values: input.form?.values ?? policyFormValues(input.policy),
    errors: input.form?.errors ?? {},
    error: input.form?.error ?? null,
    states: policyStates(input.policy),
    scopeNote: team ? 'The installation’s own guard-rails apply as well; where both set a rule, the stricter one wins.' : 'Teams can add stricter rules for their own keys; the stricter one wins.',
    readOnlyNote: team ? 'Only owners and admins of the team change these; the installation’s own guard-rails apply as well.' : null,
    violations: input.violating ? violationRows(input.violating) : null,
    violationsTitle: input.ownKeysOnly ? 'Your keys that break the guard-rails' : 'Keys that break the guard-rails',
    emails: input.emails,
    teamNames: input.teamNames ?? {},
    showTeam: !team,
    savedNoticeHere: input.savedNoticeHere ?? false,
  };
}
