import { NoneTrafficSchema } from '../../config/schema.js';
import type { PluginDefinition } from '../plugins/plugin.js';
import type { TrafficAdapter } from './traffic-adapter.js';

/** `none`: nothing outside greenlight moves; the switch is greenlight's record of which environment is live (the demo, dry runs, setups where a person moves traffic). */
export const noneTraffic: PluginDefinition<{ type: 'none' }, TrafficAdapter> = {
  type: 'none',
  schema: NoneTrafficSchema,
  create: () => ({
    type: 'none',
    switchTo: async (request) => ({ detail: `recorded ${request.to} as live (traffic adapter none: nothing outside greenlight was changed)` }),
  }),
};
