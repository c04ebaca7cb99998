export * from './ca';
export * from './tokens';
