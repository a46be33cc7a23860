// The parts of README.md generated from the code: the kmipd.json reference (from the config
// schema) and the command reference (from commander's own definitions). Each sits between
// `<!-- generated:NAME:begin -->` and `<!-- generated:NAME:end -->`; scripts/gen-config-reference.mjs
// rewrites them and a test fails when the README differs from what the code says.
import type { Command, Option } from 'commander';
import { configReferenceMarkdown } from '../server/config-reference.js';
import { buildProgram } from './main.js';

export interface GeneratedSection {
  readonly name: string;
  render(): string;
}

const code = (s: string) => `\`${s}\``;
const cell = (s: string) => s.replace(/\|/g, '\\|').replace(/\n/g, ' ');

function optionText(o: Option): string {
  const shown = code(o.flags.replace(/^-[a-zA-Z], /, ''));
  const dflt = o.defaultValue !== undefined && o.defaultValue !== false && !(Array.isArray(o.defaultValue) && o.defaultValue.length === 0);
  return dflt ? `${shown} (${JSON.stringify(o.defaultValue)})` : shown;
}

function commandRows(cmd: Command, prefix: string): string[] {
  const rows: string[] = [];
  for (const sub of cmd.commands) {
    const args = sub.registeredArguments.map((a) => (a.required ? `<${a.name()}>` : `[${a.name()}]`)).join(' ');
    const path = `${prefix} ${sub.name()}`;
    if (sub.commands.length > 0) {
      rows.push(...commandRows(sub, path));
      continue;
    }
    const options = sub.options.filter((o) => !o.hidden && o.long !== '--data').map(optionText);
    const usage = code(`${path}${args ? ` ${args}` : ''}`);
    rows.push(`| ${usage} | ${cell(sub.description())}${options.length ? `<br>${cell(options.join(', '))}` : ''} |`);
  }
  return rows;
}

/** One row per command: usage, what it does, its options (defaults in brackets); `--data` is everywhere. */
export function cliReferenceMarkdown(program: Command = buildProgram()): string {
  return ['| command | what it does; options |', '|---|---|', ...commandRows(program, program.name())].join('\n') + '\n';
}

export const GENERATED_SECTIONS: readonly GeneratedSection[] = [
  { name: 'config-reference', render: configReferenceMarkdown },
  { name: 'cli-reference', render: () => cliReferenceMarkdown() },
];

const markers = (name: string) => [`<!-- generated:${name}:begin -->`, `<!-- generated:${name}:end -->`] as const;

/** The text between a section's markers (without them), or undefined when the markers are missing. */
export function generatedText(readme: string, name: string): string | undefined {
  const [begin, end] = markers(name);
  const a = readme.indexOf(begin);
  const b = readme.indexOf(end);
  if (a < 0 || b < a) return undefined;
  return readme.slice(a + begin.length, b).replace(/^\n/, '');
}

/** The README with every generated section rendered afresh. */
export function regenerate(readme: string): string {
  let out = readme;
  for (const s of GENERATED_SECTIONS) {
    const [begin, end] = markers(s.name);
    const a = out.indexOf(begin);
    const b = out.indexOf(end);
    if (a < 0 || b < a) throw new Error(`README.md lacks the markers ${begin} … ${end}`);
    out = `${out.slice(0, a + begin.length)}\n${s.render()}${out.slice(b)}`;
  }
  return out;
}
