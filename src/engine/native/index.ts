// Public face of the native backend: the Backend implementation and the addon loader.
export { NativeBackend } from './backend.js';
export { loadNativeAddon, nativeAddonAvailable, type NativeAddon, type SimdLevel } from './addon.js';
