// markdown-it-footnote ships no types (and there is no @types package for its version 4).
declare module 'markdown-it-footnote' {
  import type MarkdownIt from 'markdown-it';

  const footnote: MarkdownIt.PluginSimple;
  export = footnote;
}
