// several instances: 2 gateway processes versus 1 on connections held and heartbeat CPU. It needs the
// scale-out issue (the Socket.IO Redis adapter, so a push reaches a device on any instance); until it
// lands the scenario is reported as not applicable.
//
// To add it: start two gateways with the same REDIS_URL/REDIS_PREFIX (startServer twice), connect
// half of the devices to each (connectDevices per server), and reuse heartbeats.measureRate with a
// snapshot that sums both servers' CPU; compare against one instance holding all devices. The
// baseline row stays "n/a": a bare Socket.IO server has no cross-instance delivery without the same
// adapter.
export const name = 'instances';

export function applicable() {
  return { applicable: false, reason: 'not applicable yet: needs the scale-out issue (several gateway instances on one Redis)' };
}
