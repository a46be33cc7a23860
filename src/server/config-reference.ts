// The configuration reference (README, `kmipd config reference`), rendered from CONFIG_SCHEMA so
// that it says exactly what the loader accepts.
import { CONFIG_SCHEMA, type Section, type Setting } from './config.js';

type Entry = Section<unknown> | Setting<unknown>;

interface Row {
  readonly key: string;
  readonly setting: Setting<unknown>;
  readonly inOptional: Section<unknown> | undefined;
}

function rows(s: Section<unknown>, prefix: string, optional: Section<unknown> | undefined): Row[] {
  const out: Row[] = [];
  for (const [key, entry] of Object.entries(s.entries as Record<string, Entry>)) {
    const at = prefix ? `${prefix}.${key}` : key;
    if (entry.kind === 'section') out.push(...rows(entry, at, entry.optional ? entry : optional));
    else out.push({ key: at, setting: entry, inOptional: optional });
  }
  return out;
}

const code = (s: string) => `\`${s}\``;
const cell = (s: string) => s.replace(/\|/g, '\\|').replace(/\n/g, ' ');

function defaultCell(s: Setting<unknown>): string {
  if ('initWrites' in s) return `required; \`init\` writes ${s.initWrites}`;
  if (s.defaultText) return s.defaultText;
  return code(JSON.stringify(s.default));
}

/** One Markdown table row per setting: key, type, default, meaning (with its serve flag). */
export function configReferenceMarkdown(): string {
  const lines = ['| key | type | default | meaning |', '|---|---|---|---|'];
  for (const { key, setting, inOptional } of rows(CONFIG_SCHEMA as Section<unknown>, '', undefined)) {
    let meaning = setting.description;
    if (inOptional?.description) meaning += `; ${inOptional.description}`;
    if (setting.serveFlag) meaning += `; \`serve ${setting.serveFlag}\` overrides it for one run`;
    lines.push(`| ${code(key)} | ${cell(setting.type)} | ${cell(defaultCell(setting))} | ${cell(meaning)} |`);
  }
  return lines.join('\n') + '\n';
}
