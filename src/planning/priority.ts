export type Priority = 'high' | 'normal' | 'low';

/** A cue: an English word (whole word, case-insensitive) or a Chinese phrase (substring). */
const cue = (word: string): RegExp =>
  /\p{Script=Han}/u.test(word)
    ? new RegExp(word, 'u')
    : new RegExp(`(?<![\\p{L}\\p{N}])${word}(?![\\p{L}\\p{N}])`, 'iu');

/**
 * Priority keywords (story 33.4: review/exam → high; error/bug → high): mistakes first (something the learner got
 * wrong), then review and exam material, then optional material (low).
 */
const MISTAKE = [
  'error',
  'errors',
  'bug',
  'bugs',
  'mistake',
  'mistakes',
  'wrong',
  'incorrect',
  '错误',
  '错题',
  '易错',
  '误区',
  '做错',
];
const REVIEW = [
  'review',
  'exam',
  'exams',
  'test',
  'tests',
  'quiz',
  'revision',
  'final',
  '复习',
  '考试',
  '考点',
  '测验',
  '期末',
  '重点',
];
const OPTIONAL = ['optional', 'extra', 'bonus', 'further reading', '选学', '拓展', '扩展阅读', '了解即可'];

const RULES: ReadonlyArray<{ priority: Priority; why: string; cues: ReadonlyArray<[RegExp, string]> }> = [
  { priority: 'high', why: 'mentions mistakes to fix', cues: MISTAKE.map((w) => [cue(w), w]) },
  { priority: 'high', why: 'review or exam material', cues: REVIEW.map((w) => [cue(w), w]) },
  { priority: 'low', why: 'optional material', cues: OPTIONAL.map((w) => [cue(w), w]) },
];

/** A group's priority from its nodes' content, with the keywords that decided it (none: normal, no reason). */
export function priorityOf(contents: readonly string[]): { priority: Priority; reason?: string } {
  for (const rule of RULES) {
    const found = rule.cues.filter(([re]) => contents.some((c) => re.test(c))).map(([, w]) => `"${w}"`);
    if (found.length)
      return { priority: rule.priority, reason: `${rule.why}: ${found.slice(0, 3).join(', ')}` };
  }
  return { priority: 'normal' };
}
