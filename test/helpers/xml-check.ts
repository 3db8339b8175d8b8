/**
 * A small well-formedness check for the SVG the drill writes (no XML parser among the dependencies): one root,
 * tags nested and closed in order, attributes quoted and not repeated, no stray `<` or bare `&` in text. Returns the
 * elements by name with their text, or throws naming the first problem.
 */
export interface XmlElement {
  readonly name: string;
  readonly attributes: Readonly<Record<string, string>>;
  text: string;
}

const TAG = /<(\/?)([A-Za-z][\w:.-]*)((?:\s+[A-Za-z_:][\w:.-]*\s*=\s*"[^"<]*")*)\s*(\/?)>/y;
const ATTRIBUTE = /([A-Za-z_:][\w:.-]*)\s*=\s*"([^"<]*)"/g;
const ENTITY = /&(?:amp|lt|gt|quot|apos|#\d+|#x[0-9a-fA-F]+);/y;

export function checkXml(text: string): XmlElement[] {
  let i = 0;
  const declaration = /^<\?xml[^?]*\?>\s*/.exec(text);
  if (declaration !== null) i = declaration[0].length;
  const stack: XmlElement[] = [];
  const elements: XmlElement[] = [];
  let roots = 0;
  while (i < text.length) {
    const c = text[i]!;
    if (c === '<') {
      TAG.lastIndex = i;
      const m = TAG.exec(text);
      if (m === null) throw new Error(`malformed tag at ${i}: ${text.slice(i, i + 40)}`);
      const [whole, closing, name, attrs, selfClosing] = m as unknown as [
        string,
        string,
        string,
        string,
        string,
      ];
      if (closing === '/') {
        const open = stack.pop();
        if (open?.name !== name) throw new Error(`</${name}> at ${i} closes ${open?.name ?? 'nothing'}`);
      } else {
        const attributes: Record<string, string> = {};
        for (const [, key, value] of attrs.matchAll(ATTRIBUTE)) {
          if (key! in attributes) throw new Error(`attribute ${key} repeated on <${name}> at ${i}`);
          attributes[key!] = value!;
        }
        const element: XmlElement = { name, attributes, text: '' };
        if (stack.length === 0) roots += 1;
        elements.push(element);
        if (selfClosing !== '/') stack.push(element);
      }
      i += whole.length;
      continue;
    }
    if (c === '&') {
      ENTITY.lastIndex = i;
      const m = ENTITY.exec(text);
      if (m === null) throw new Error(`bare & at ${i}`);
      i += m[0].length;
      continue;
    }
    if (stack.length === 0 && !/\s/.test(c)) throw new Error(`text outside the root at ${i}`);
    const top = stack.at(-1);
    if (top !== undefined) top.text += c;
    i += 1;
  }
  if (stack.length > 0) throw new Error(`<${stack.at(-1)!.name}> is never closed`);
  if (roots !== 1) throw new Error(`${roots} root elements`);
  return elements;
}
