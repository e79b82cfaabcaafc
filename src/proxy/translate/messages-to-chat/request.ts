import { absent, arrayAt, isObject, malformed, objectAt, stringAt, untranslatable } from '../shared.js';
import type { Json, TranslatedRequest } from '../types.js';

/** OpenAI takes at most four stop sequences. */
const MAX_STOP_SEQUENCES = 4;

/**
 * Anthropic Messages request → OpenAI Chat Completions request.
 *
 * The system prompt becomes the first message; a user turn's tool_result blocks become tool messages (placed before
 * the rest of the turn, right after the assistant's tool calls, where OpenAI requires them), and images inside a
 * tool result follow in a user message (OpenAI tool messages carry text only). cache_control is a hint OpenAI does
 * not need (it caches prompts by itself) and thinking blocks of earlier turns are context Anthropic itself ignores,
 * so neither is sent; everything else without an OpenAI equivalent is refused (400, naming it).
 */
export function messagesToChatRequest(body: Json): TranslatedRequest {
  const messages: Json[] = [];
  if (!absent(body.system)) {
    const system = textOf(body.system, 'system');
    if (system !== '') messages.push({ role: 'system', content: system });
  }
  arrayAt(body.messages, 'messages').forEach((value, i) => messages.push(...translateMessage(value, `messages[${i}]`)));
  const out: Json = { model: body.model, messages };
  for (const [param, value] of Object.entries(body)) {
    if (param === 'model' || param === 'messages' || param === 'system' || absent(value)) continue;
    const translate = PARAMS[param];
    if (!translate) throw untranslatable(param, `this parameter has no equivalent in the OpenAI Chat Completions API, which serves the model '${String(body.model)}'.`);
    translate(value, out, param);
  }
  return { body: out, maxOutputTokens: typeof out.max_completion_tokens === 'number' ? out.max_completion_tokens : null };
}

type ParamTranslation = (value: unknown, out: Json, param: string) => void;

const PARAMS: Record<string, ParamTranslation> = {
  // max_completion_tokens: what every current OpenAI model takes (reasoning models refuse max_tokens).
  max_tokens: (value, out) => {
    out.max_completion_tokens = value;
  },
  stream: (value, out) => {
    if (typeof value !== 'boolean') throw malformed('stream', 'a boolean');
    if (value) out.stream = true;
  },
  temperature: (value, out) => {
    if (typeof value !== 'number') throw malformed('temperature', 'a number');
    out.temperature = value;
  },
  top_p: (value, out) => {
    if (typeof value !== 'number') throw malformed('top_p', 'a number');
    out.top_p = value;
  },
  top_k: () => {
    throw untranslatable('top_k', 'OpenAI models have no top_k sampling.');
  },
  stop_sequences: (value, out) => {
    const stops = arrayAt(value, 'stop_sequences').map((s, i) => stringAt(s, `stop_sequences[${i}]`));
    if (stops.length > MAX_STOP_SEQUENCES) throw untranslatable('stop_sequences', `OpenAI models take at most ${MAX_STOP_SEQUENCES} stop sequences.`);
    if (stops.length > 0) out.stop = stops;
  },
  tools: (value, out) => {
    out.tools = arrayAt(value, 'tools').map((tool, i) => translateTool(tool, `tools[${i}]`));
  },
  tool_choice: (value, out) => translateToolChoice(objectAt(value, 'tool_choice'), out),
  thinking: (value, out) => {
    const thinking = objectAt(value, 'thinking');
    if (thinking.type === 'disabled' || thinking.type === 'adaptive') return; // adaptive: the model decides, as OpenAI's default effort does
    if (thinking.type !== 'enabled') throw malformed('thinking.type', 'enabled, disabled or adaptive');
    const budget = typeof thinking.budget_tokens === 'number' ? thinking.budget_tokens : 0;
    out.reasoning_effort = budget < 4096 ? 'low' : budget < 16384 ? 'medium' : 'high';
  },
  output_config: (value, out) => {
    const config = objectAt(value, 'output_config');
    for (const [key, v] of Object.entries(config)) {
      if (absent(v)) continue;
      if (key === 'format') out.response_format = responseFormat(v, 'output_config.format');
      else if (key === 'effort') {
        if (v !== 'low' && v !== 'medium' && v !== 'high') throw untranslatable('output_config.effort', `${JSON.stringify(v)} has no OpenAI equivalent (low, medium or high).`);
        out.reasoning_effort = v;
      } else throw untranslatable(`output_config.${key}`, 'has no OpenAI equivalent.');
    }
  },
  // The beta spelling of output_config.format.
  output_format: (value, out) => {
    out.response_format = responseFormat(value, 'output_format');
  },
  // Anthropic's metadata.user_id is for its own abuse detection; OpenAI's equivalent takes other identifiers, and
  // nothing in the answer depends on it.
  metadata: (value) => void objectAt(value, 'metadata'),
  // Claude Code sends `{edits: [{type: "clear_thinking_20251015", keep: "all"}]}`: thinking is never sent to OpenAI
  // models (see above), so clearing it is already done. Every other edit is server-side state OpenAI cannot keep.
  context_management: (value) => {
    const edits = absent(objectAt(value, 'context_management').edits) ? [] : arrayAt((value as Json).edits, 'context_management.edits');
    edits.forEach((edit, i) => {
      const type = objectAt(edit, `context_management.edits[${i}]`).type;
      if (type !== 'clear_thinking_20251015') throw untranslatable(`context_management.edits[${i}]`, `${JSON.stringify(type)} edits context on Anthropic's servers; OpenAI models cannot (clear_thinking can be translated).`);
    });
  },
  service_tier: (value) => {
    if (value !== 'auto') throw untranslatable('service_tier', 'only the default service tier can be translated for OpenAI models.');
  },
};

function responseFormat(value: unknown, param: string): Json {
  const format = objectAt(value, param);
  if (format.type !== 'json_schema') throw malformed(`${param}.type`, 'json_schema');
  // Anthropic always enforces the schema: OpenAI's strict mode does the same.
  return { type: 'json_schema', json_schema: { name: 'output', schema: objectAt(format.schema, `${param}.schema`), strict: true } };
}

function translateTool(value: unknown, param: string): Json {
  const tool = objectAt(value, param);
  if (!absent(tool.type) && tool.type !== 'custom') throw untranslatable(`${param}.type`, `${JSON.stringify(tool.type)} is an Anthropic server or client tool; OpenAI models take custom tools (name, description, input_schema) only.`);
  const fn: Json = { name: stringAt(tool.name, `${param}.name`), parameters: objectAt(tool.input_schema, `${param}.input_schema`) };
  if (!absent(tool.description)) fn.description = stringAt(tool.description, `${param}.description`);
  if (typeof tool.strict === 'boolean') fn.strict = tool.strict;
  return { type: 'function', function: fn };
}

function translateToolChoice(choice: Json, out: Json): void {
  if (choice.type === 'auto') out.tool_choice = 'auto';
  else if (choice.type === 'any') out.tool_choice = 'required';
  else if (choice.type === 'none') out.tool_choice = 'none';
  else if (choice.type === 'tool') out.tool_choice = { type: 'function', function: { name: stringAt(choice.name, 'tool_choice.name') } };
  else throw malformed('tool_choice.type', 'auto, any, tool or none');
  if (choice.disable_parallel_tool_use === true) out.parallel_tool_calls = false;
}

/** The text of a string or of text blocks (system prompts, tool results). */
function textOf(content: unknown, param: string): string {
  if (typeof content === 'string') return content;
  return arrayAt(content, param)
    .map((value, i) => {
      const block = objectAt(value, `${param}[${i}]`);
      if (block.type !== 'text') throw untranslatable(`${param}[${i}].type`, `${JSON.stringify(block.type)} blocks cannot be translated here (text can).`);
      return stringAt(block.text, `${param}[${i}].text`);
    })
    .join('\n');
}

function translateMessage(value: unknown, param: string): Json[] {
  const message = objectAt(value, param);
  const content = typeof message.content === 'string' ? [{ type: 'text', text: message.content }] : arrayAt(message.content, `${param}.content`);
  if (message.role === 'assistant') return [assistantMessage(content, param)];
  // A system message inside the conversation (Anthropic accepts them after a user turn; Claude Code sends them):
  // an OpenAI system message at the same place.
  if (message.role === 'system') return [{ role: 'system', content: textOf(message.content, `${param}.content`) }];
  if (message.role !== 'user') throw malformed(`${param}.role`, 'user, assistant or system');
  const tools: Json[] = [];
  const parts: Json[] = [];
  content.forEach((v, i) => {
    const at = `${param}.content[${i}]`;
    const block = objectAt(v, at);
    if (block.type === 'tool_result') tools.push(...toolMessage(block, at, parts));
    else parts.push(userPart(block, at));
  });
  return parts.length > 0 ? [...tools, { role: 'user', content: parts }] : tools;
}

function userPart(block: Json, param: string): Json {
  switch (block.type) {
    case 'text':
      return { type: 'text', text: stringAt(block.text, `${param}.text`) };
    case 'image':
      return { type: 'image_url', image_url: { url: sourceUrl(objectAt(block.source, `${param}.source`), `${param}.source`) } };
    case 'document':
      return documentPart(block, param);
    default:
      throw untranslatable(`${param}.type`, `${JSON.stringify(block.type)} blocks cannot be translated for OpenAI models (text, image, document and tool_result can).`);
  }
}

function sourceUrl(source: Json, param: string): string {
  if (source.type === 'base64') return `data:${stringAt(source.media_type, `${param}.media_type`)};base64,${stringAt(source.data, `${param}.data`)}`;
  if (source.type === 'url') return stringAt(source.url, `${param}.url`);
  throw untranslatable(`${param}.type`, `${JSON.stringify(source.type)} sources cannot be translated for OpenAI models (base64 and url can).`);
}

function documentPart(block: Json, param: string): Json {
  const source = objectAt(block.source, `${param}.source`);
  if (source.type === 'text') return { type: 'text', text: stringAt(source.data, `${param}.source.data`) };
  if (source.type !== 'base64' || source.media_type !== 'application/pdf')
    throw untranslatable(`${param}.source`, 'OpenAI chat models read documents as base64 PDF or plain text only.');
  const filename = typeof block.title === 'string' && block.title !== '' ? block.title : 'document.pdf';
  return { type: 'file', file: { filename, file_data: `data:application/pdf;base64,${stringAt(source.data, `${param}.source.data`)}` } };
}

/** A tool_result → a tool message; its images go to `after` (the user message that follows). */
function toolMessage(block: Json, param: string, after: Json[]): Json[] {
  const id = stringAt(block.tool_use_id, `${param}.tool_use_id`);
  const texts: string[] = [];
  if (typeof block.content === 'string') texts.push(block.content);
  else if (!absent(block.content))
    arrayAt(block.content, `${param}.content`).forEach((v, i) => {
      const part = objectAt(v, `${param}.content[${i}]`);
      if (part.type === 'text') texts.push(stringAt(part.text, `${param}.content[${i}].text`));
      else if (part.type === 'image') after.push(userPart(part, `${param}.content[${i}]`));
      else throw untranslatable(`${param}.content[${i}].type`, `${JSON.stringify(part.type)} blocks in a tool result cannot be translated for OpenAI models (text and image can).`);
    });
  // OpenAI tool messages have no error flag: the model is told in the text.
  const text = texts.join('\n');
  return [{ role: 'tool', tool_call_id: id, content: block.is_error === true ? `Error: ${text}` : text }];
}

function assistantMessage(content: unknown[], param: string): Json {
  const texts: string[] = [];
  const calls: Json[] = [];
  content.forEach((v, i) => {
    const at = `${param}.content[${i}]`;
    const block = objectAt(v, at);
    if (block.type === 'text') texts.push(stringAt(block.text, `${at}.text`));
    else if (block.type === 'tool_use')
      calls.push({ id: stringAt(block.id, `${at}.id`), type: 'function', function: { name: stringAt(block.name, `${at}.name`), arguments: JSON.stringify(isObject(block.input) ? block.input : {}) } });
    else if (block.type !== 'thinking' && block.type !== 'redacted_thinking')
      throw untranslatable(`${at}.type`, `${JSON.stringify(block.type)} blocks cannot be translated for OpenAI models.`);
  });
  const message: Json = { role: 'assistant', content: texts.length > 0 ? texts.join('') : null };
  if (calls.length > 0) message.tool_calls = calls;
  return message;
}
