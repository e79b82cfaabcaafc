/**
 * secretlint rule: reports ModelBridge API keys (`mbk_…`) and management tokens (`mbm_…`) whose checksum verifies.
 * See README.md in this package and "Finding leaked ModelBridge secrets" in the app's docs/security.md.
 */
import { findModelBridgeSecrets } from './secret-format.js';

/**
 * The message names the kind of secret and its last four characters — what the portal shows to identify a key —
 * never the secret: scanner output lands in CI logs, which are not the place to copy a leaked key to.
 */
export const messages = {
  MODELBRIDGE_API_KEY: {
    en: (/** @type {{ HINT: string }} */ props) =>
      `found ModelBridge API key ${props.HINT}: revoke it on the portal's API keys page or with keys.revoke`,
  },
  MODELBRIDGE_MANAGEMENT_TOKEN: {
    en: (/** @type {{ HINT: string }} */ props) =>
      `found ModelBridge management token ${props.HINT}: revoke it on the portal's Tokens page or with tokens.revoke`,
  },
};

/** @type {import('@secretlint/types').SecretLintRuleCreator} */
export const creator = {
  messages,
  meta: {
    id: '@modelbridge/secretlint-rule-modelbridge',
    recommended: true,
    type: 'scanner',
    supportedContentTypes: ['text'],
  },
  create(context) {
    const t = context.createTranslator(messages);
    return {
      file(source) {
        for (const found of findModelBridgeSecrets(source.content)) {
          const messageId = found.prefix === 'mbk_' ? 'MODELBRIDGE_API_KEY' : 'MODELBRIDGE_MANAGEMENT_TOKEN';
          context.report({
            message: t(messageId, { HINT: `${found.prefix}…${found.secret.slice(-4)}` }),
            range: [found.start, found.end],
          });
        }
      },
    };
  },
};
