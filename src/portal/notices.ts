/**
 * Confirmation messages after a POST + 303 redirect travel as a fixed code (?done=revoked), never as free text,
 * so a crafted link cannot make the portal display arbitrary words.
 */
const NOTICES: Record<string, string> = {
  revoked: 'The key was revoked. Requests using it are refused from now on.',
  limit: 'The spending limit was updated.',
  team_created: 'Team created.',
  member_added: 'Member added.',
  member_updated: 'Role updated.',
  invite_accepted: 'Welcome: you joined the team.',
  invite_revoked: 'Invitation withdrawn. Its link no longer works.',
  member_removed: 'Member removed. Their keys for this team were revoked.',
  left: 'You left the team. Your keys for it were revoked.',
  token_revoked: 'The token was revoked.',
  webhook_deleted: 'The webhook was deleted.',
  test_queued: 'A test event was queued; it is sent within a few seconds.',
  user_created: 'User created.',
  user_updated: 'User updated.',
  credited: 'Top-up recorded.',
  model_saved: 'Model saved.',
  plan_saved: 'Plan saved.',
  signed_out: 'You are signed out.',
  password_changed: 'Password changed. Your other sessions were signed out.',
  password_reset: 'Your password was set. Sign in with it now.',
  alerts_saved: 'Alert thresholds saved.',
  auto_rotate_on: 'Scheduled rotation is on: at its rotate-by date the key is rotated and the new key sent to your webhook.',
  auto_rotate_off: 'Scheduled rotation is off.',
  key_policy_saved: 'Guard-rails saved. They apply to new keys; existing keys that break them are listed.',
};

export function noticeText(code: unknown): string | null {
  return typeof code === 'string' && Object.hasOwn(NOTICES, code) ? NOTICES[code]! : null;
}
