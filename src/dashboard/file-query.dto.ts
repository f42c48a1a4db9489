import { IsIn, IsOptional } from 'class-validator';
import { VaultPathQueryDto } from './vault-browser.dto';

/** What `GET /files` answers: the markdown as it is, or the dashboard's preview of it as an HTML fragment. */
export const FILE_FORMATS = ['markdown', 'html'] as const;
export type FileFormat = (typeof FILE_FORMATS)[number];

export class FileQueryDto extends VaultPathQueryDto {
  /** `markdown` (default): the file as `text/markdown`; `html`: rendered as in the dashboard's preview. */
  @IsOptional()
  @IsIn(FILE_FORMATS, { message: `format must be one of: ${FILE_FORMATS.join(', ')}` })
  format?: FileFormat;
}
