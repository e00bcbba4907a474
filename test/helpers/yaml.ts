/**
 * The block subset of YAML that Kubernetes manifests are written in, enough to check the
 * examples without a dependency: `---` documents, `#` comments, nested maps and lists by
 * indentation, `- key: value` list items, plain and quoted scalars. Anything else (flow
 * collections, anchors, multi-line strings, tabs) is an error naming the line, so an
 * example that strays from the subset fails its test instead of being half-read.
 */
export type Yaml = string | Yaml[] | { [key: string]: Yaml };

interface Line {
  no: number;
  indent: number;
  text: string;
}

export function parseYamlDocuments(source: string): Yaml[] {
  const docs: Line[][] = [[]];
  source.split('\n').forEach((raw, i) => {
    if (raw.includes('\t')) throw new Error(`line ${i + 1}: tab in indentation or value`);
    const text = stripComment(raw).trimEnd();
    if (text.trim() === '') return;
    if (text === '---') return void docs.push([]);
    docs[docs.length - 1]!.push({ no: i + 1, indent: text.length - text.trimStart().length, text: text.trim() });
  });
  return docs
    .filter((d) => d.length > 0)
    .map((lines) => {
      const p = new Parser(lines);
      const v = p.block(lines[0]!.indent);
      if (!p.done()) throw new Error(`line ${p.peek()!.no}: unexpected indentation`);
      return v;
    });
}

function stripComment(line: string): string {
  let quote: string | undefined;
  for (let i = 0; i < line.length; i++) {
    const c = line[i]!;
    if (quote) {
      if (c === quote) quote = undefined;
    } else if (c === '"' || c === "'") quote = c;
    else if (c === '#' && (i === 0 || line[i - 1] === ' ')) return line.slice(0, i);
  }
  return line;
}

function scalar(text: string, no: number): string {
  if (/^["'].*["']$/.test(text) && text.length >= 2) return text.slice(1, -1);
  if (/^[[{&*|>!%@`]/.test(text)) throw new Error(`line ${no}: '${text}' is outside the supported YAML subset`);
  return text;
}

/** `key: rest` → [key, rest]; undefined when the text is not a mapping entry. */
function entry(text: string): [string, string] | undefined {
  const m = /^([A-Za-z0-9_.\/-]+):(?:\s+(.*))?$/.exec(text);
  return m ? [m[1]!, m[2] ?? ''] : undefined;
}

class Parser {
  private i = 0;
  constructor(private readonly lines: Line[]) {}

  done(): boolean {
    return this.i >= this.lines.length;
  }

  peek(): Line | undefined {
    return this.lines[this.i];
  }

  /** The block (map or list) whose lines are indented exactly `indent`. */
  block(indent: number): Yaml {
    const first = this.peek()!;
    return first.text.startsWith('- ') || first.text === '-' ? this.list(indent) : this.map(indent);
  }

  private map(indent: number, out: { [key: string]: Yaml } = {}): { [key: string]: Yaml } {
    for (let l = this.peek(); l && l.indent === indent && !l.text.startsWith('-'); l = this.peek()) {
      const e = entry(l.text);
      if (!e) throw new Error(`line ${l.no}: expected 'key: value', got '${l.text}'`);
      if (e[0] in out) throw new Error(`line ${l.no}: duplicate key '${e[0]}'`);
      this.i++;
      out[e[0]] = this.value(e[1], indent, l.no);
    }
    return out;
  }

  private list(indent: number): Yaml[] {
    const out: Yaml[] = [];
    for (let l = this.peek(); l && l.indent === indent && l.text.startsWith('-'); l = this.peek()) {
      this.i++;
      const rest = l.text.slice(1).trim();
      const e = rest === '' ? undefined : entry(rest);
      if (rest === '') out.push(this.nested(indent, l.no));
      else if (e) {
        // `- key: value` opens a map whose further keys sit under `key`.
        const item: { [key: string]: Yaml } = { [e[0]]: this.value(e[1], indent + 2, l.no) };
        const next = this.peek();
        if (next && next.indent === indent + 2) this.map(indent + 2, item);
        out.push(item);
      } else out.push(scalar(rest, l.no));
    }
    return out;
  }

  private value(rest: string, indent: number, no: number): Yaml {
    if (rest !== '') return scalar(rest, no);
    return this.nested(indent, no);
  }

  /** The block under a `key:` or `-` with nothing after it. */
  private nested(indent: number, no: number): Yaml {
    const next = this.peek();
    // A list may sit at the same indentation as its key (`key:\n- a`), as kubectl writes it.
    if (next && (next.indent > indent || (next.indent === indent && next.text.startsWith('- ')))) return this.block(next.indent);
    throw new Error(`line ${no}: a key with no value`);
  }
}
