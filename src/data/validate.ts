// Structural checks on a normalized conversation: non-empty contents, system only first, user/assistant turns
// alternating from a user turn, ending with an assistant turn (the turn a trainer learns from).

import type { FieldPaths } from './formats.js';
import type { Conversation } from './types.js';

/** Problems with a conversation, each naming the source field (paths[i] describes messages[i]). Empty: valid. */
export function validateConversation(conv: Conversation, paths?: readonly FieldPaths[]): string[] {
  const errors: string[] = [];
  const msgs = conv.messages;
  const p = (i: number): FieldPaths => paths?.[i] ?? { role: `messages[${i}].role`, content: `messages[${i}].content` };
  if (msgs.length === 0) return ['conversation has no messages'];
  msgs.forEach((m, i) => {
    if (m.content.trim() === '') errors.push(`field "${p(i).content}" is empty`);
  });
  let expected: 'user' | 'assistant' = 'user';
  let previous: string | null = null;
  for (let i = 0; i < msgs.length; i++) {
    const role = msgs[i].role;
    if (role === 'system') {
      if (i !== 0) errors.push(`field "${p(i).role}": a system message is only allowed first, found at position ${i}`);
      continue;
    }
    if (role !== expected) {
      errors.push(
        previous === null
          ? `field "${p(i).role}": conversation must start with a user turn (after an optional system message), got "${role}"`
          : `field "${p(i).role}": expected "${expected}" after "${previous}" (turns must alternate), got "${role}"`,
      );
      break; // one alternation error is enough; the rest would only repeat it
    }
    previous = role;
    expected = role === 'user' ? 'assistant' : 'user';
  }
  const last = msgs[msgs.length - 1];
  if (last.role !== 'assistant') {
    errors.push(`conversation must end with an assistant turn, the last message ("${p(msgs.length - 1).role}") is "${last.role}"`);
  }
  return errors;
}
