import { plainToInstance } from 'class-transformer';
import { validateSync } from 'class-validator';
import { FileQueryDto } from './file-query.dto';

describe('GET /files query (FileQueryDto)', () => {
  const errors = (query: object) =>
    validateSync(plainToInstance(FileQueryDto, query)).flatMap((e) => Object.values(e.constraints ?? {}));

  it('takes a path and an optional format, markdown or html', () => {
    expect(errors({ path: 'a.md' })).toEqual([]);
    expect(errors({ path: 'a.md', format: 'html' })).toEqual([]);
    expect(errors({ path: 'a.md', format: 'markdown' })).toEqual([]);
    expect(errors({ path: 'a.md', format: 'pdf' })).toEqual(['format must be one of: markdown, html']);
  });
});
