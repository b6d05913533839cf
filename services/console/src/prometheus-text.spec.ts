import { sumByLabel } from './prometheus-text';

describe('sumByLabel', () => {
  it('sums the samples of the wanted counters by one label and skips the rest', () => {
    const text = [
      '# HELP mesh_events_out_total Events out',
      '# TYPE mesh_events_out_total counter',
      'mesh_events_out_total{stage="processor",handler="orders"} 7',
      'mesh_events_out_total{stage="processor",handler="audit"} 5',
      'mesh_events_out_total{stage="router",handler="orders"} 12',
      'mesh_dead_letters_total{stage="router"} 1',
      'mesh_other_total 99',
      'garbage line',
    ].join('\n');
    const sums = sumByLabel(text, ['mesh_events_out_total', 'mesh_dead_letters_total'], 'stage');
    expect(Object.fromEntries(sums.get('mesh_events_out_total')!)).toEqual({ processor: 12, router: 12 });
    expect(Object.fromEntries(sums.get('mesh_dead_letters_total')!)).toEqual({ router: 1 });
    expect(sums.has('mesh_other_total')).toBe(false);
  });
});
