import { createHash } from 'node:crypto';
import type { AgentNodeInput } from './agent-runner';
import { buildPrompt, type PromptTemplate } from './llm/prompt-templates';
import { factsOf, OFFLINE_TEMPLATES } from './offline-templates';
import { detectLanguage } from './content-analysis';

/** Fixed nodes (English and Chinese, with surroundings) every template is pinned on. */
const PIN_NODES: AgentNodeInput[] = [
  {
    canvasPath: 'pin.canvas',
    nodeId: 'n1',
    nodeType: 'text',
    content:
      '# Photosynthesis\nPlants turn light, water and carbon dioxide into sugar and oxygen. Chlorophyll absorbs the light. The Calvin cycle fixes carbon.',
    context: { neighbours: ['Cellular respiration', 'Chloroplast structure'], groupLabel: 'Biology' },
  },
  {
    canvasPath: 'pin.canvas',
    nodeId: 'n2',
    nodeType: 'text',
    content: '# 光合作用\n植物利用光能把水和二氧化碳转化为糖和氧气。叶绿素吸收光。卡尔文循环固定碳。',
  },
];

const sha = (text: string): string => createHash('sha256').update(text).digest('hex').slice(0, 16);

/** A hash of what `template` makes of the pin nodes: the built prompts (system and user). */
export function promptPin(template: PromptTemplate): string {
  return sha(
    JSON.stringify(
      PIN_NODES.map((n) => {
        const p = buildPrompt(template, n, 4000);
        return [p.system, p.prompt];
      }),
    ),
  );
}

/** A hash of what the offline template of `agentType` writes for the pin nodes. */
export function offlinePin(agentType: string): string {
  const template = OFFLINE_TEMPLATES[agentType];
  return sha(JSON.stringify(PIN_NODES.map((n) => template(factsOf(n.content, detectLanguage(n.content))))));
}
