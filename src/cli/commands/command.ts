import type { ParseArgsConfig } from 'node:util';

/** Flags a command declares, in the shape `node:util` parseArgs takes. `--json` and `--help` belong to the shell. */
export type CommandOptions = NonNullable<ParseArgsConfig['options']>;

/** Flag values as parseArgs returns them. */
export type CommandValues = Record<string, string | boolean | (string | boolean)[] | undefined>;

/** What a command found. `exitCode` 1 means the check found something; "could not run" is a thrown error (2). */
export interface CommandResult {
  readonly exitCode: 0 | 1;
  /** Printed as one JSON document with `--json`. */
  readonly data: unknown;
  readonly text: string;
}

/** One CLI command. Handlers return data and never print, so tests call them directly. */
export interface Command {
  /** The words that select it, such as `['policy', 'lint']`. */
  readonly name: readonly string[];
  readonly summary: string;
  readonly help: string;
  readonly options: CommandOptions;
  handler(values: CommandValues, positionals: readonly string[]): Promise<CommandResult>;
}
