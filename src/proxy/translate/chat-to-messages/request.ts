import { absent, arrayAt, isObject, malformed, objectAt, parseArguments, parseDataUrl, stringAt, untranslatable } from '../shared.js';
import type { Json, TranslatedRequest, TranslationLimits } from '../types.js';

/**
 * OpenAI Chat Completions request → Anthropic Messages request.
 *
 * system and developer messages become the system prompt (in order, wherever they stand: Messages has no system
 * turn); tool messages become tool_result blocks of a user turn; consecutive turns of one role are merged, as the
 * Messages API requires alternating turns. A parameter with no Anthropic equivalent is refused (400, naming it)
 * unless its value is the one that changes nothing (n: 1, a penalty of 0, …).
 */
export function chatToMessagesRequest(body: Json, limits: TranslationLimits): TranslatedRequest {
  const out: Json = { model: body.model };
  const system: Json[] = [];
  const messages = translateMessages(arrayAt(body.messages, 'messages'), system);
  if (system.length > 0) out.system = system;
  out.messages = messages;

  for (const [param, value] of Object.entries(body)) {
    if (param === 'model' || param === 'messages' || absent(value)) continue;
    const translate = PARAMS[param];
    if (!translate) throw untranslatable(param, `this parameter has no equivalent in the Anthropic Messages API, which serves the model '${String(body.model)}'.`);
    translate(value, out, param);
  }
  const maxTokens = typeof body.max_completion_tokens === 'number' ? body.max_completion_tokens : typeof body.max_tokens === 'number' ? body.max_tokens : null;
  // Anthropic requires max_tokens: without the client's, the model's cap from the catalog (docs/compatibility.md).
  out.max_tokens = maxTokens ?? limits.defaultMaxTokens;
  if (!absent(body.reasoning_effort)) applyReasoningEffort(body.reasoning_effort, out, messages);
  if (body.parallel_tool_calls === false) {
    if (!Array.isArray(out.tools)) throw untranslatable('parallel_tool_calls', 'only applies with tools.');
    out.tool_choice = { ...((out.tool_choice as Json | undefined) ?? { type: 'auto' }), disable_parallel_tool_use: true };
  }
  return { body: out, maxOutputTokens: out.max_tokens as number };
}

type ParamTranslation = (value: unknown, out: Json, param: string) => void;

/** Accepted when it has the value that changes nothing; anything else cannot be done upstream. */
const onlyNeutral = (neutral: unknown[], why: string): ParamTranslation => (value, _out, param) => {
  if (!neutral.includes(value)) throw untranslatable(param, why);
};
const handledElsewhere: ParamTranslation = () => undefined;

const PARAMS: Record<string, ParamTranslation> = {
  stream: (value, out) => {
    if (typeof value !== 'boolean') throw malformed('stream', 'a boolean');
    if (value) out.stream = true;
  },
  // include_usage is answered by the translated stream itself; the upstream always reports usage.
  stream_options: (value) => void objectAt(value, 'stream_options'),
  max_tokens: handledElsewhere,
  max_completion_tokens: handledElsewhere,
  reasoning_effort: handledElsewhere,
  parallel_tool_calls: (value) => {
    if (typeof value !== 'boolean') throw malformed('parallel_tool_calls', 'a boolean');
  },
  temperature: (value, out) => {
    // OpenAI takes 0–2, Anthropic 0–1: above 1 there is no equivalent.
    if (typeof value !== 'number' || value < 0) throw malformed('temperature', 'a number from 0 to 1');
    if (value > 1) throw untranslatable('temperature', 'Anthropic models take a temperature from 0 to 1.');
    out.temperature = value;
  },
  top_p: (value, out) => {
    if (typeof value !== 'number') throw malformed('top_p', 'a number');
    out.top_p = value;
  },
  stop: (value, out) => {
    const stops = typeof value === 'string' ? [value] : arrayAt(value, 'stop').map((s, i) => stringAt(s, `stop[${i}]`));
    if (stops.length > 0) out.stop_sequences = stops;
  },
  tools: (value, out) => {
    out.tools = arrayAt(value, 'tools').map((tool, i) => translateTool(tool, `tools[${i}]`));
  },
  tool_choice: (value, out) => {
    out.tool_choice = translateToolChoice(value);
  },
  response_format: (value, out) => {
    const format = objectAt(value, 'response_format');
    if (format.type === 'text') return;
    if (format.type === 'json_object') throw untranslatable('response_format', 'type json_object (JSON mode) has no Anthropic equivalent; use type json_schema with a schema.');
    if (format.type !== 'json_schema') throw malformed('response_format.type', 'text, json_object or json_schema');
    const spec = objectAt(format.json_schema, 'response_format.json_schema');
    // Anthropic enforces every schema it is given, as OpenAI's strict mode does; the name is only a label.
    out.output_config = { ...((out.output_config as Json | undefined) ?? {}), format: { type: 'json_schema', schema: objectAt(spec.schema, 'response_format.json_schema.schema') } };
  },
  user: (value, out) => {
    out.metadata = { user_id: stringAt(value, 'user') };
  },
  safety_identifier: (value, out) => {
    out.metadata = { user_id: stringAt(value, 'safety_identifier') };
  },
  n: onlyNeutral([1], 'Anthropic models return one completion per request; send n: 1 or leave it out.'),
  presence_penalty: onlyNeutral([0], 'Anthropic models have no presence penalty.'),
  frequency_penalty: onlyNeutral([0], 'Anthropic models have no frequency penalty.'),
  logprobs: onlyNeutral([false], 'Anthropic models do not return log probabilities.'),
  store: onlyNeutral([false], 'completions of Anthropic models are not stored by the provider.'),
  service_tier: onlyNeutral(['auto', 'default'], 'only the default service tier can be translated for Anthropic models.'),
  // A hint for OpenAI's cache routing; it changes no answer (Anthropic caches by cache_control, see below).
  prompt_cache_key: (value) => void stringAt(value, 'prompt_cache_key'),
};

const REASONING_BUDGETS: Record<string, number | null> = { none: null, minimal: 1024, low: 1024, medium: 2048, high: 4096 };
const MIN_THINKING_BUDGET = 1024;

/**
 * reasoning_effort → extended thinking with a token budget (LiteLLM's budgets). Anthropic requires the budget to be
 * below max_tokens, so it is cut to fit, and refused when even the smallest budget does not.
 */
function applyReasoningEffort(value: unknown, out: Json, messages: Json[]): void {
  if (typeof value !== 'string' || !(value in REASONING_BUDGETS)) throw untranslatable('reasoning_effort', `${JSON.stringify(value)} has no Anthropic equivalent (none, minimal, low, medium or high).`);
  const budget = REASONING_BUDGETS[value]!;
  if (budget === null || continuesToolUseWithoutThinking(messages)) return;
  const maxTokens = out.max_tokens as number;
  if (maxTokens <= MIN_THINKING_BUDGET) throw untranslatable('reasoning_effort', `Anthropic's extended thinking needs max_tokens above ${MIN_THINKING_BUDGET}.`);
  out.thinking = { type: 'enabled', budget_tokens: Math.min(budget, maxTokens - 1) };
}

/**
 * With thinking on, Anthropic requires the assistant turn a tool result answers to start with its thinking block
 * (signature and all). A client that did not send it back (`thinking_blocks`) continues the tool-use loop without
 * thinking for this request, as LiteLLM does; docs/compatibility.md says so.
 */
function continuesToolUseWithoutThinking(messages: Json[]): boolean {
  const assistant = [...messages].reverse().find((m) => m.role === 'assistant');
  const content = (assistant?.content ?? []) as Json[];
  return content.some((b) => b.type === 'tool_use') && content[0]?.type !== 'thinking' && content[0]?.type !== 'redacted_thinking';
}

function translateTool(value: unknown, param: string): Json {
  const tool = objectAt(value, param);
  if (tool.type !== 'function') throw untranslatable(`${param}.type`, `${JSON.stringify(tool.type)} tools cannot be translated for Anthropic models (function tools can).`);
  const fn = objectAt(tool.function, `${param}.function`);
  const out: Json = { name: stringAt(fn.name, `${param}.function.name`), input_schema: absent(fn.parameters) ? { type: 'object', properties: {} } : objectAt(fn.parameters, `${param}.function.parameters`) };
  if (!absent(fn.description)) out.description = stringAt(fn.description, `${param}.function.description`);
  if (typeof fn.strict === 'boolean') out.strict = fn.strict;
  return out;
}

function translateToolChoice(value: unknown): Json {
  if (value === 'auto') return { type: 'auto' };
  if (value === 'none') return { type: 'none' };
  if (value === 'required') return { type: 'any' };
  const choice = objectAt(value, 'tool_choice');
  if (choice.type !== 'function') throw untranslatable('tool_choice.type', `${JSON.stringify(choice.type)} cannot be translated for Anthropic models.`);
  return { type: 'tool', name: stringAt(objectAt(choice.function, 'tool_choice.function').name, 'tool_choice.function.name') };
}

type Role = 'user' | 'assistant';

function translateMessages(list: unknown[], system: Json[]): Json[] {
  const turns: { role: Role; content: Json[] }[] = [];
  const push = (role: Role, blocks: Json[]) => {
    if (blocks.length === 0) return;
    const last = turns[turns.length - 1];
    if (last?.role === role) last.content.push(...blocks);
    else turns.push({ role, content: blocks });
  };
  list.forEach((value, i) => {
    const param = `messages[${i}]`;
    const message = objectAt(value, param);
    if (!absent(message.name)) throw untranslatable(`${param}.name`, 'Anthropic messages have no participant names.');
    switch (message.role) {
      case 'system':
      case 'developer':
        system.push(...textBlocks(message.content, `${param}.content`));
        break;
      case 'user':
        push('user', userBlocks(message.content, `${param}.content`));
        break;
      case 'assistant':
        push('assistant', assistantBlocks(message, param));
        break;
      case 'tool':
        push('user', [toolResult(message, param)]);
        break;
      default:
        throw untranslatable(`${param}.role`, `${JSON.stringify(message.role)} messages cannot be translated for Anthropic models (system, developer, user, assistant and tool can).`);
    }
  });
  return turns;
}

/** A content part's cache_control (OpenRouter's and LiteLLM's convention) is Anthropic's own: kept. */
function withCache(block: Json, part: Json): Json {
  if (isObject(part.cache_control)) block.cache_control = part.cache_control;
  return block;
}

function textBlocks(content: unknown, param: string): Json[] {
  if (typeof content === 'string') return content === '' ? [] : [{ type: 'text', text: content }];
  return arrayAt(content, param).flatMap((value, i) => {
    const part = objectAt(value, `${param}[${i}]`);
    if (part.type !== 'text') throw untranslatable(`${param}[${i}].type`, `${JSON.stringify(part.type)} parts cannot be translated here (text can).`);
    const text = stringAt(part.text, `${param}[${i}].text`);
    // Anthropic refuses empty text blocks.
    return text === '' ? [] : [withCache({ type: 'text', text }, part)];
  });
}

function userBlocks(content: unknown, param: string): Json[] {
  if (typeof content === 'string') return textBlocks(content, param);
  return arrayAt(content, param).flatMap((value, i) => {
    const at = `${param}[${i}]`;
    const part = objectAt(value, at);
    switch (part.type) {
      case 'text': {
        const text = stringAt(part.text, `${at}.text`);
        return text === '' ? [] : [withCache({ type: 'text', text }, part)];
      }
      case 'image_url':
        return [withCache(imageBlock(part.image_url, `${at}.image_url`), part)];
      case 'file':
        return [withCache(documentBlock(part.file, `${at}.file`), part)];
      default:
        throw untranslatable(`${at}.type`, `${JSON.stringify(part.type)} parts cannot be translated for Anthropic models (text, image_url and file with file_data can).`);
    }
  });
}

/** `detail` has no Anthropic equivalent and changes only how OpenAI scales an image: it is not sent. */
function imageBlock(value: unknown, param: string): Json {
  const url = stringAt(typeof value === 'string' ? value : objectAt(value, param).url, `${param}.url`);
  const data = parseDataUrl(url);
  if (data) return { type: 'image', source: { type: 'base64', media_type: data.mediaType, data: data.data } };
  if (!/^https?:\/\//i.test(url)) throw malformed(`${param}.url`, 'an https URL or a base64 data URL');
  return { type: 'image', source: { type: 'url', url } };
}

function documentBlock(value: unknown, param: string): Json {
  const file = objectAt(value, param);
  if (!absent(file.file_id)) throw untranslatable(`${param}.file_id`, 'files uploaded to OpenAI cannot be read by Anthropic models; send the file as file_data.');
  const data = parseDataUrl(stringAt(file.file_data, `${param}.file_data`));
  if (!data || data.mediaType !== 'application/pdf') throw untranslatable(`${param}.file_data`, 'Anthropic models read PDF documents: a data:application/pdf;base64 URL.');
  const block: Json = { type: 'document', source: { type: 'base64', media_type: 'application/pdf', data: data.data } };
  if (typeof file.filename === 'string') block.title = file.filename;
  return block;
}

function assistantBlocks(message: Json, param: string): Json[] {
  for (const field of ['audio', 'function_call']) if (!absent(message[field])) throw untranslatable(`${param}.${field}`, 'cannot be translated for Anthropic models.');
  const blocks: Json[] = [];
  if (!absent(message.thinking_blocks))
    arrayAt(message.thinking_blocks, `${param}.thinking_blocks`).forEach((value, i) => {
      const block = objectAt(value, `${param}.thinking_blocks[${i}]`);
      if (block.type === 'thinking') blocks.push({ type: 'thinking', thinking: stringAt(block.thinking, `${param}.thinking_blocks[${i}].thinking`), signature: stringAt(block.signature, `${param}.thinking_blocks[${i}].signature`) });
      else if (block.type === 'redacted_thinking') blocks.push({ type: 'redacted_thinking', data: stringAt(block.data, `${param}.thinking_blocks[${i}].data`) });
      else throw malformed(`${param}.thinking_blocks[${i}].type`, 'thinking or redacted_thinking');
    });
  if (!absent(message.content)) {
    if (typeof message.content === 'string') blocks.push(...textBlocks(message.content, `${param}.content`));
    else
      arrayAt(message.content, `${param}.content`).forEach((value, i) => {
        const part = objectAt(value, `${param}.content[${i}]`);
        // A refusal the model gave earlier is part of what it said.
        const text = part.type === 'refusal' ? stringAt(part.refusal, `${param}.content[${i}].refusal`) : null;
        blocks.push(...(text === null ? textBlocks([part], `${param}.content`) : text === '' ? [] : [{ type: 'text', text }]));
      });
  }
  if (typeof message.refusal === 'string' && message.refusal !== '') blocks.push({ type: 'text', text: message.refusal });
  if (!absent(message.tool_calls)) {
    arrayAt(message.tool_calls, `${param}.tool_calls`).forEach((value, i) => {
      const at = `${param}.tool_calls[${i}]`;
      const call = objectAt(value, at);
      if (call.type !== 'function') throw untranslatable(`${at}.type`, `${JSON.stringify(call.type)} tool calls cannot be translated for Anthropic models.`);
      const fn = objectAt(call.function, `${at}.function`);
      blocks.push({ type: 'tool_use', id: stringAt(call.id, `${at}.id`), name: stringAt(fn.name, `${at}.function.name`), input: parseArguments(fn.arguments, `${at}.function.arguments`) });
    });
  }
  return blocks;
}

function toolResult(message: Json, param: string): Json {
  const id = stringAt(message.tool_call_id, `${param}.tool_call_id`);
  const content = typeof message.content === 'string' ? message.content : textBlocks(message.content, `${param}.content`);
  return { type: 'tool_result', tool_use_id: id, content };
}
