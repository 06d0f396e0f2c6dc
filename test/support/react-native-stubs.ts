/**
 * Stand-ins for the three React Native modules client/README.md's example uses, written into the
 * temporary app of test/sdk-package.e2e-spec.ts as node_modules packages. The declarations are the
 * subset of the real packages' types the example touches (react-native's AppState,
 * @react-native-async-storage's getItem/setItem, @react-native-community/netinfo's state union);
 * the code lets the test drive app-state and network changes (`__set`) and see what was read.
 */
export const REACT_NATIVE_STUBS: Record<string, Record<string, string>> = {
  "react-native": {
    "package.json": `{ "name": "react-native", "version": "0.0.0-stub", "type": "module", "main": "index.js", "types": "index.d.ts" }
`,
    "index.d.ts": `export type AppStateStatus = 'active' | 'background' | 'inactive' | 'unknown' | 'extension';
export interface NativeEventSubscription { remove(): void }
export declare const AppState: {
  currentState: AppStateStatus;
  addEventListener(type: 'change', listener: (state: AppStateStatus) => void): NativeEventSubscription;
};
`,
    "index.js": `const listeners = new Set();
export const AppState = {
  currentState: 'active',
  addEventListener(type, listener) {
    if (type !== 'change') throw new Error(\`stub: unexpected AppState event \${type}\`);
    listeners.add(listener);
    return { remove: () => listeners.delete(listener) };
  },
};
export function __set(state) {
  AppState.currentState = state;
  for (const listener of listeners) listener(state);
}
export const __listeners = () => listeners.size;
`,
  },
  "@react-native-async-storage/async-storage": {
    "package.json": `{ "name": "@react-native-async-storage/async-storage", "version": "0.0.0-stub", "type": "module", "main": "index.js", "types": "index.d.ts" }
`,
    "index.d.ts": `declare const AsyncStorage: {
  getItem(key: string): Promise<string | null>;
  setItem(key: string, value: string): Promise<void>;
};
export default AsyncStorage;
`,
    "index.js": `const values = new Map();
export const __reads = new Set();
export const __writes = new Set();
export default {
  async getItem(key) {
    __reads.add(key);
    return values.get(key) ?? null;
  },
  async setItem(key, value) {
    __writes.add(key);
    values.set(key, String(value));
  },
};
`,
  },
  "@react-native-community/netinfo": {
    "package.json": `{ "name": "@react-native-community/netinfo", "version": "0.0.0-stub", "type": "module", "main": "index.js", "types": "index.d.ts" }
`,
    "index.d.ts": `export declare enum NetInfoStateType {
  unknown = 'unknown', none = 'none', cellular = 'cellular', wifi = 'wifi', bluetooth = 'bluetooth',
  ethernet = 'ethernet', wimax = 'wimax', vpn = 'vpn', other = 'other',
}
interface Connected { isConnected: true; isInternetReachable: boolean | null }
interface Disconnected<T extends NetInfoStateType> { type: T; isConnected: false; isInternetReachable: false; details: null }
interface ConnectedDetails { isConnectionExpensive: boolean }
export type NetInfoState =
  | { type: NetInfoStateType.unknown; isConnected: boolean | null; isInternetReachable: null; details: null }
  | { type: NetInfoStateType.none; isConnected: false; isInternetReachable: false; details: null }
  | (Connected & { type: NetInfoStateType.wifi; details: ConnectedDetails & { ssid: string | null; bssid: string | null; strength: number | null } })
  | (Connected & { type: NetInfoStateType.cellular; details: ConnectedDetails & { carrier: string | null; cellularGeneration: '2g' | '3g' | '4g' | '5g' | null } })
  | (Connected & { type: NetInfoStateType.bluetooth | NetInfoStateType.ethernet | NetInfoStateType.wimax | NetInfoStateType.vpn | NetInfoStateType.other; details: ConnectedDetails })
  | Disconnected<NetInfoStateType.wifi>
  | Disconnected<NetInfoStateType.cellular>;
export type NetInfoChangeHandler = (state: NetInfoState) => void;
export type NetInfoSubscription = () => void;
declare const NetInfo: {
  fetch(): Promise<NetInfoState>;
  addEventListener(listener: NetInfoChangeHandler): NetInfoSubscription;
};
export default NetInfo;
`,
    "index.js": `export const NetInfoStateType = {
  unknown: 'unknown', none: 'none', cellular: 'cellular', wifi: 'wifi', bluetooth: 'bluetooth',
  ethernet: 'ethernet', wimax: 'wimax', vpn: 'vpn', other: 'other',
};
let current = { type: 'wifi', isConnected: true, isInternetReachable: true, details: { ssid: 'Home Wi-Fi 5G', bssid: null, strength: 80, isConnectionExpensive: false } };
const listeners = new Set();
export function __set(state) {
  current = state;
  for (const listener of listeners) listener(state);
}
export const __listeners = () => listeners.size;
export default {
  fetch: async () => current,
  addEventListener(listener) {
    listeners.add(listener);
    return () => listeners.delete(listener);
  },
};
`,
  },
};
