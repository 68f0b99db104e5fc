// The arena's vote log: each vote of the web page's arena becomes one JSON line appended to a file, in the shape of
// FastChat's battle log (clean_battle_data.py: question_id, model_a, model_b, winner, judge, conversation_a/_b,
// turn, anony, tstamp), so that its Elo and Bradley–Terry tools (elo_analysis.py) read it as it is; nomoat's own
// fields sit beside them (vote, prompt, config_a/_b with their adapter stacks, sampling, time).
//
// Writes are safe for a log that other processes may append to as well: every line goes out in one write() on a
// file opened for appending (O_APPEND: the kernel puts it at the end, whole), one vote at a time in this process,
// synced before the vote is acknowledged; a last line left unterminated by a crash gets its newline first. The file
// is opened per vote, so moving it away (log rotation) just starts a new one.

import { randomUUID } from 'node:crypto';
import { createReadStream, statSync } from 'node:fs';
import { open } from 'node:fs/promises';
import { dirname, resolve } from 'node:path';
import type { ArenaConfig, ArenaVoteRequest, ArenaVoteValue } from './protocol.js';

/** FastChat's `winner` for each vote. */
export const WINNER = { a: 'model_a', b: 'model_b', tie: 'tie', both_bad: 'tie (bothbad)' } as const satisfies Record<ArenaVoteValue, string>;

/** A chat message as FastChat's conversation_a/_b hold them (OpenAI's shape). */
interface Turn {
  role: 'user' | 'assistant';
  content: string;
}

/** One line of the votes file. */
export interface BattleRecord {
  // FastChat's fields
  /** the vote's id (FastChat: the conversation's) */
  question_id: string;
  /** configName(config_a) */
  model_a: string;
  model_b: string;
  winner: (typeof WINNER)[ArenaVoteValue];
  judge: string;
  conversation_a: Turn[];
  conversation_b: Turn[];
  /** user turns: always 1 here */
  turn: number;
  /** the voter did not know which was which (the page reveals them after the vote) */
  anony: true;
  /** Unix time in seconds */
  tstamp: number;
  // nomoat's
  vote: ArenaVoteValue;
  prompt: string;
  config_a: ArenaConfig;
  config_b: ArenaConfig;
  sampling: { temperature: number | null; max_tokens: number | null };
  /** tstamp as an ISO 8601 date */
  time: string;
}

/**
 * A configuration's name in the log: the model alone, or the model and its stack (`tiny+math@0.5+style@-1`), so
 * that the same configuration always rates as one player.
 */
export function configName(c: ArenaConfig): string {
  return [c.model, ...c.adapters.map((a) => `${a.name}@${a.scale}`)].join('+');
}

/** The line a vote becomes. */
export function battleRecord(v: ArenaVoteRequest, id: string, nowMs: number): BattleRecord {
  const conversation = (reply: string): Turn[] => [{ role: 'user', content: v.prompt }, { role: 'assistant', content: reply }];
  return {
    question_id: id,
    model_a: configName(v.config_a),
    model_b: configName(v.config_b),
    winner: WINNER[v.vote],
    judge: v.judge ?? 'anonymous',
    conversation_a: conversation(v.reply_a),
    conversation_b: conversation(v.reply_b),
    turn: 1,
    anony: true,
    tstamp: nowMs / 1000,
    vote: v.vote,
    prompt: v.prompt,
    config_a: v.config_a,
    config_b: v.config_b,
    sampling: { temperature: v.sampling?.temperature ?? null, max_tokens: v.sampling?.max_tokens ?? null },
    time: new Date(nowMs).toISOString(),
  };
}

/** The votes file: appended to one vote at a time, counted on demand. */
export class VoteLog {
  readonly path: string;
  private queue: Promise<unknown> = Promise.resolve();

  /** Checks now that the file could be written: its folder exists and the path is not a folder. */
  constructor(path: string) {
    this.path = resolve(path);
    let folder;
    try {
      folder = statSync(dirname(this.path));
    } catch {
      throw new Error(`the votes file's folder ${dirname(this.path)} does not exist`);
    }
    if (!folder.isDirectory()) throw new Error(`the votes file's folder ${dirname(this.path)} is not a folder`);
    let file;
    try {
      file = statSync(this.path);
    } catch {
      return; // created at the first vote
    }
    if (!file.isFile()) throw new Error(`the votes file ${this.path} exists and is not a plain file`);
  }

  /** Appends a vote; resolves with its record once the line is on disk. */
  append(v: ArenaVoteRequest, nowMs = Date.now()): Promise<BattleRecord> {
    const record = battleRecord(v, randomUUID(), nowMs);
    const done = this.queue.then(() => this.write(`${JSON.stringify(record)}\n`)).then(() => record);
    this.queue = done.catch(() => undefined);
    return done;
  }

  /** Lines in the file (0 when it does not exist yet). */
  async count(): Promise<number> {
    await this.queue;
    let n = 0;
    try {
      for await (const chunk of createReadStream(this.path) as AsyncIterable<Buffer>) {
        for (let i = chunk.indexOf(10); i !== -1; i = chunk.indexOf(10, i + 1)) n++;
      }
    } catch (e) {
      if ((e as { code?: unknown }).code === 'ENOENT') return 0;
      throw e;
    }
    return n;
  }

  private async write(line: string): Promise<void> {
    const fh = await open(this.path, 'a+');
    try {
      const { size } = await fh.stat();
      let text = line;
      if (size > 0) {
        const last = Buffer.alloc(1);
        await fh.read(last, 0, 1, size - 1);
        if (last[0] !== 10) text = `\n${line}`; // a line cut short before: end it, so this one stays whole
      }
      const buf = Buffer.from(text, 'utf8');
      let { bytesWritten } = await fh.write(buf);
      while (bytesWritten < buf.length) bytesWritten += (await fh.write(buf, bytesWritten)).bytesWritten; // a short write: rare on files
      await fh.datasync();
    } finally {
      await fh.close();
    }
  }
}
