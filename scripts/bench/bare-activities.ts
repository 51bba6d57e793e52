/** The bare baseline's activities: nothing but the round trip through Temporal. */
export const bareActivities = {
  async first(): Promise<void> {},
  async second(): Promise<void> {},
};

export type BareActivities = typeof bareActivities;
