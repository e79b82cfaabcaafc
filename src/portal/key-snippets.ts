/**
 * Ready-to-paste set-up for the tools people point at ModelBridge. With the secret only inside the show-once panel
 * (the POST response that created the key), so it never lands anywhere else; on a key's page with a placeholder.
 */
export interface Snippet {
  id: string;
  title: string;
  hint: string;
  code: string;
}

export function keySnippets(publicBase: string, secret: string): Snippet[] {
  const openaiBase = `${publicBase}/v1`;
  return [
    {
      id: 'curl',
      title: 'curl',
      hint: 'Check the key works (any model from the catalog).',
      code: [
        `curl ${openaiBase}/chat/completions \\`,
        `  -H "Authorization: Bearer ${secret}" \\`,
        `  -H "Content-Type: application/json" \\`,
        `  -d '{"model": "gpt-4o-mini", "messages": [{"role": "user", "content": "Hello"}]}'`,
      ].join('\n'),
    },
    {
      id: 'python',
      title: 'OpenAI SDK (Python)',
      hint: 'pip install openai',
      code: [
        'from openai import OpenAI',
        '',
        `client = OpenAI(base_url="${openaiBase}", api_key="${secret}")`,
        'reply = client.chat.completions.create(',
        '    model="gpt-4o-mini",',
        '    messages=[{"role": "user", "content": "Hello"}],',
        ')',
        'print(reply.choices[0].message.content)',
      ].join('\n'),
    },
    {
      id: 'node',
      title: 'OpenAI SDK (JavaScript)',
      hint: 'npm install openai',
      code: [
        "import OpenAI from 'openai';",
        '',
        `const client = new OpenAI({ baseURL: '${openaiBase}', apiKey: '${secret}' });`,
        'const reply = await client.chat.completions.create({',
        "  model: 'gpt-4o-mini',",
        "  messages: [{ role: 'user', content: 'Hello' }],",
        '});',
        'console.log(reply.choices[0].message.content);',
      ].join('\n'),
    },
    {
      id: 'cursor',
      title: 'Cursor',
      hint: 'Settings → Models → API Keys: paste the key as the OpenAI API key, turn on "Override OpenAI Base URL" and enter:',
      code: [`OpenAI API Key:     ${secret}`, `Override Base URL:  ${openaiBase}`].join('\n'),
    },
    {
      id: 'claude-code',
      title: 'Claude Code',
      hint: 'Add to your shell profile, then run `claude`. (ANTHROPIC_API_KEY works too; it is sent as x-api-key.)',
      code: [`export ANTHROPIC_BASE_URL="${publicBase}"`, `export ANTHROPIC_AUTH_TOKEN="${secret}"`].join('\n'),
    },
  ];
}
