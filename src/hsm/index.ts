export * from './config.js';
export * from './errors.js';
export * from './softhsm.js';
export * from './key-protector.js';
export * from './hsm-pool.js';
export * from './prewrapped-keys.js';
