/** Types of the dashboard's markdown renderer (markdown.js, plain browser JavaScript). */
export function escapeHtml(text: string): string;
export function renderMarkdown(source: string): string;
