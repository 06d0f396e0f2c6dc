import { loadConfig } from '../config/app-config';
import { NetworkLabeler } from './network-label';

describe('NetworkLabeler', () => {
  const env = { API_KEYS: 'key-one-0123456789,key-two-0123456789', DEVICE_JWT_SECRET: 's'.repeat(32) };

  it('keeps the kind and replaces the rest with a short hash', () => {
    const label = NetworkLabeler.forConfig(loadConfig(env)).label('wifi:Smith-Family-Home-5G');
    expect(label).toMatch(/^wifi:[0-9a-f]{8}$/);
    expect(label).not.toContain('Smith');
  });

  it('shows no kind it cannot trust to be one', () => {
    const labeler = new NetworkLabeler(['secret']);
    expect(labeler.label('Smith-Family-Home-5G')).toMatch(/^other:[0-9a-f]{8}$/);
    expect(labeler.label('SmithFamily:home')).toMatch(/^other:/);
    expect(labeler.label(':x')).toMatch(/^other:/);
    expect(labeler.label('cell:T-Mobile/US')).toMatch(/^cell:/);
  });

  it('labels alike on every instance of one deployment, and differently in another', () => {
    const network = 'wifi:Smith-Family-Home-5G';
    const a = NetworkLabeler.forConfig(loadConfig(env)).label(network);
    // Another instance: same secrets, keys listed in another order, its own instance id.
    const b = NetworkLabeler.forConfig(loadConfig({ ...env, API_KEYS: 'key-two-0123456789,key-one-0123456789', INSTANCE_ID: 'gw-b' })).label(network);
    const other = NetworkLabeler.forConfig(loadConfig({ ...env, DEVICE_JWT_SECRET: 't'.repeat(32) })).label(network);
    expect(b).toBe(a);
    expect(other).not.toBe(a);
    expect(NetworkLabeler.forConfig(loadConfig(env)).label('wifi:Neighbour')).not.toBe(a);
  });
});
