#!/usr/bin/env node
import { parseArgs } from 'node:util';
import { PhiCacheError } from '../errors.js';
import { type Command, type CommandOptions, type CommandValues, commands } from './commands/index.js';
import { packageVersion } from './version.js';

/**
 * The `phicache` binary: a thin shell. It picks the command, parses its flags strictly, calls the handler and
 * renders the result as text or, with `--json`, one JSON document on stdout. Exit codes, the same for every command
 * so that scripts and CI can branch on them: 0 all good, 1 the check found something, 2 the command could not run.
 */

interface Output {
  exitCode: 0 | 1 | 2;
  stdout: string;
  stderr: string;
}

const shellOptions = {
  json: { type: 'boolean' },
  help: { type: 'boolean', short: 'h' },
} as const satisfies CommandOptions;

/** Exit codes by name, as DESIGN.md §9 gives them. */
const COULD_NOT_RUN = 2;

async function run(argv: readonly string[]): Promise<Output> {
  const json = argv.slice(0, endOfFlags(argv)).includes('--json');
  try {
    return await dispatch(argv, json);
  } catch (error) {
    return failure(error, json);
  }
}

async function dispatch(argv: readonly string[], json: boolean): Promise<Output> {
  if (argv[0] === 'help') {
    const words = argv.slice(1).filter((arg) => arg !== '--json');
    if (words.length === 0) return render(json, overview());
    const command = commands.find((c) => c.name.join(' ') === words.join(' '));
    if (command === undefined) throw unknownCommand(words);
    return render(json, commandHelp(command));
  }

  const command = findCommand(argv);
  if (command === undefined) {
    const words = argv.slice(0, endOfFlags(argv)).filter((arg) => !arg.startsWith('-'));
    if (words.length === 0 && argv.some((arg) => arg === '--help' || arg === '-h'))
      return render(json, overview());
    if (words.length === 0 && argv.includes('--version')) {
      const version = await packageVersion();
      return render(json, { exitCode: 0, data: { version }, text: version });
    }
    if (words.length === 0) throw new PhiCacheError('ERR_CLI_USAGE', 'no command given');
    throw unknownCommand(words);
  }

  const { values, positionals } = parseFlags(command, argv.slice(command.name.length));
  if (values.help === true) return render(json, commandHelp(command));
  const { json: _json, help: _help, ...own } = values;
  const result = await command.handler(own, positionals);
  return render(json, result);
}

function parseFlags(
  command: Command,
  args: readonly string[],
): { values: CommandValues; positionals: string[] } {
  let parsed: { values: CommandValues; positionals: string[] };
  try {
    const parsedArgs = parseArgs({
      args: [...args],
      options: { ...command.options, ...shellOptions },
      allowPositionals: true,
      strict: true,
    });
    parsed = { values: parsedArgs.values as CommandValues, positionals: parsedArgs.positionals };
  } catch (error) {
    throw new PhiCacheError('ERR_CLI_USAGE', `${command.name.join(' ')}: ${(error as Error).message}`, {
      cause: error,
    });
  }
  refuseEmpty(command, parsed);
  return parsed;
}

/** `--tenant ""` (an unset shell variable, usually) would otherwise reach the handlers as a real value. */
function refuseEmpty(command: Command, parsed: { values: CommandValues; positionals: string[] }): void {
  for (const [flag, value] of Object.entries(parsed.values)) {
    if ((Array.isArray(value) ? value : [value]).includes('')) {
      throw new PhiCacheError('ERR_CLI_USAGE', `${command.name.join(' ')}: --${flag} is empty`);
    }
  }
  if (parsed.positionals.includes('')) {
    throw new PhiCacheError('ERR_CLI_USAGE', `${command.name.join(' ')}: an argument is empty`);
  }
}

/** The longest registered name that the leading words spell, so `policy lint` wins over a future `policy`. */
function findCommand(argv: readonly string[]): Command | undefined {
  let found: Command | undefined;
  for (const command of commands) {
    const matches = command.name.every((word, index) => argv[index] === word);
    if (matches && (found === undefined || command.name.length > found.name.length)) found = command;
  }
  return found;
}

function endOfFlags(argv: readonly string[]): number {
  const index = argv.indexOf('--');
  return index === -1 ? argv.length : index;
}

function unknownCommand(words: readonly string[]): PhiCacheError {
  return new PhiCacheError('ERR_CLI_USAGE', `unknown command: ${words.join(' ')}`);
}

function overview(): { exitCode: 0; data: unknown; text: string } {
  const width = Math.max(...commands.map((c) => c.name.join(' ').length));
  return {
    exitCode: 0,
    data: { commands: commands.map((c) => ({ name: c.name.join(' '), summary: c.summary })) },
    text: [
      'Usage: phicache <command> [flags] [--json]',
      '       phicache --version',
      '',
      'Commands:',
      ...commands.map((c) => `  ${c.name.join(' ').padEnd(width)}  ${c.summary}`),
      '',
      'Run `phicache help <command>` or `phicache <command> --help` for its flags.',
    ].join('\n'),
  };
}

function commandHelp(command: Command): { exitCode: 0; data: unknown; text: string } {
  return {
    exitCode: 0,
    data: { name: command.name.join(' '), summary: command.summary, help: command.help },
    text: command.help,
  };
}

function render(json: boolean, result: { exitCode: 0 | 1; data: unknown; text: string }): Output {
  const stdout = json ? JSON.stringify(result.data) : result.text;
  return { exitCode: result.exitCode, stdout: `${stdout}\n`, stderr: '' };
}

function failure(error: unknown, json: boolean): Output {
  const known =
    error instanceof PhiCacheError
      ? error
      : new PhiCacheError(
          'ERR_INTERNAL',
          `unexpected ${(error as Error)?.name ?? 'error'}: ${(error as Error)?.message}`,
        );
  const { code, message, hint } = known;
  return {
    exitCode: COULD_NOT_RUN,
    stdout: json ? `${JSON.stringify({ error: { code, message, hint } })}\n` : '',
    stderr: `error ${code}: ${message}\nhint: ${hint}\n`,
  };
}

// A reader that has gone (`phicache ... | head`) leaves the rest of the output nowhere to go: the command still
// ends with its own exit code and without a stack trace. Any other write failure means the output was lost.
for (const stream of [process.stdout, process.stderr]) {
  stream.on('error', (error: NodeJS.ErrnoException) => {
    if (error.code !== 'EPIPE') process.exitCode = COULD_NOT_RUN;
  });
}

const output = await run(process.argv.slice(2));
process.stdout.write(output.stdout);
process.stderr.write(output.stderr);
// exitCode rather than exit(): lets a piped stdout drain before the process ends.
process.exitCode = output.exitCode;
