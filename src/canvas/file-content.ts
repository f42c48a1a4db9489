import * as path from 'node:path';
import { StringDecoder } from 'node:string_decoder';
import { NodeContentMissingError } from './canvas.errors';
import { markdownSubpath } from './markdown-subpath';
import { readFrom, type VaultFs } from './vault-fs';

/** At most this much of a file node's file is handed to an agent. */
export const MAX_FILE_CONTENT_BYTES = 256 * 1024;
/** A heading or block is looked for in at most this much of a note. */
const MAX_SUBPATH_SCAN_BYTES = 4 * 1024 * 1024;
/** How much of a file is sniffed for binary content. */
export const SNIFF_BYTES = 8 * 1024;

/** Extensions whose files are never read as text: images, PDFs, audio, video, archives, office files, fonts… */
const BINARY_EXTENSIONS = new Set(
  (
    'png jpg jpeg jfif gif bmp svg webp avif heic heif tif tiff ico psd ' +
    'pdf ' +
    'mp3 wav m4a ogg oga flac aac opus wma 3gp ' +
    'mp4 m4v webm mov mkv ogv avi wmv ' +
    'zip gz tgz 7z rar tar bz2 xz ' +
    'doc docx xls xlsx ppt pptx odt ods odp epub ' +
    'exe dll so dylib bin wasm class jar ' +
    'woff woff2 ttf otf eot sqlite db'
  ).split(' '),
);
const MARKDOWN = /\.(md|markdown)$/i;

/** Whether the file's extension says it is binary (an image, PDF, audio, video…). */
export function isBinaryPath(file: string): boolean {
  return BINARY_EXTENSIONS.has(path.extname(file).slice(1).toLowerCase());
}

/** Whether the start of a file looks binary: a NUL byte in the first 8 KiB, or a PDF signature. */
export function looksBinary(head: Buffer): boolean {
  const sample = head.subarray(0, SNIFF_BYTES);
  return sample.includes(0) || sample.subarray(0, 5).toString('latin1') === '%PDF-';
}

/** The embed reference an agent gets instead of a binary file's bytes. */
export function embedReference(file: string, subpath: string | undefined): string {
  return `![[${file}${subpath ?? ''}]]`;
}

/**
 * What an agent reads of a file node's file: its text, or just the part its `subpath` names in a markdown note, at
 * most 256 KiB; a binary file yields an embed reference, never bytes. Embeds inside the note are not followed. The
 * file is opened through `files`, which refuses (VaultPathError) a file outside the vault, a directory or another
 * non-regular file at the moment it is opened, without blocking on a FIFO. A subpath the note does not have throws
 * {@link NodeContentMissingError}.
 */
export async function readFileNode(
  files: VaultFs,
  absPath: string,
  file: string,
  subpath: string | undefined,
  nodeId: string,
): Promise<string> {
  const wantsSection = !!subpath && subpath !== '#' && MARKDOWN.test(file);
  const limit = wantsSection ? MAX_SUBPATH_SCAN_BYTES : MAX_FILE_CONTENT_BYTES;
  const { handle, stat } = await files.openFile(absPath);
  let buf: Buffer;
  try {
    if (isBinaryPath(file)) return embedReference(file, subpath);
    buf = await readFrom(handle, Math.min(limit, Number(stat.size)));
  } finally {
    await handle.close();
  }
  if (looksBinary(buf)) return embedReference(file, subpath);
  const text = decodeUtf8(buf);
  if (!wantsSection) return text;
  const section = markdownSubpath(text, subpath);
  if (section === undefined) {
    throw new NodeContentMissingError(
      `file node ${nodeId} points to "${file}${subpath}", but the note has no such ${subpath.startsWith('#^') ? 'block' : 'heading'}`,
    );
  }
  return decodeUtf8(Buffer.from(section, 'utf8').subarray(0, MAX_FILE_CONTENT_BYTES));
}

/** UTF-8 text of a buffer that may end inside a character (the partial character is dropped), without a BOM. */
function decodeUtf8(buf: Buffer): string {
  const text = new StringDecoder('utf8').write(buf);
  return text.charCodeAt(0) === 0xfeff ? text.slice(1) : text;
}
