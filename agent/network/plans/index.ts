/** The agent's pure network plans: kernel state + wanted state -> operations. */
export * from './overlay-plan';
