// The normalized conversation every instruction-data format is read into, and the formats we read.

export type Role = 'system' | 'user' | 'assistant';

export interface Message {
  role: Role;
  content: string;
}

/** One training example: an optional leading system message, then user/assistant turns alternating, ending with
 *  an assistant turn (the loader enforces this; see validate.ts). */
export interface Conversation {
  messages: Message[];
}

/** Source formats:
 *  - alpaca:   {instruction, input?, output, system?}
 *  - sharegpt: {conversations: [{from: system|human|gpt|user|assistant, value}]}
 *  - openai:   {messages: [{role: system|user|assistant, content: string}]} */
export type DataFormat = 'alpaca' | 'sharegpt' | 'openai';

export const DATA_FORMATS: readonly DataFormat[] = ['alpaca', 'sharegpt', 'openai'];
