import { Server } from 'socket.io';
import { InstanceMailbox } from '../redis/instance-mailbox';
import { DeviceChannel, rooms } from './device-channel';
import { DeviceServer, DeviceSocket } from './socket-events';

/**
 * The topic index behind topicDevices, fed by a real Socket.IO namespace's in-memory adapter (its
 * join-room and leave-room events), with sockets stood in for by their session's device id. The
 * wire side (real sockets subscribing and publishing to topics) is in test/delivery.e2e-spec.ts.
 */
describe('DeviceChannel topic index', () => {
  const topic = 'league.final';
  const room = rooms.topic(topic);
  let io: DeviceServer;
  let channel: DeviceChannel;
  let sockets: Map<string, DeviceSocket>;
  let adapter: DeviceServer['sockets']['adapter'];

  beforeEach(() => {
    io = new Server(); // not attached to an HTTP server: nothing to close
    const mailbox = { on: () => undefined } as unknown as InstanceMailbox;
    channel = new DeviceChannel(mailbox);
    channel.attach(io, 'test-instance');
    adapter = io.of('/').adapter;
    sockets = io.of('/').sockets;
  });

  const connect = (socketId: string, deviceId: string) => sockets.set(socketId, { data: { session: { deviceId } } } as unknown as DeviceSocket);
  // The in-memory adapter does both at once (its return type allows a promise, for other adapters).
  const join = (socketId: string, ...roomNames: string[]) => void adapter.addAll(socketId, new Set(roomNames));
  const leave = (socketId: string, roomName: string) => void adapter.del(socketId, roomName);
  const devices = async () => (await channel.topicDevices(topic)).sort();

  it('lists each subscribed device once, while any of its sockets is in the room', async () => {
    connect('s1', 'a');
    connect('s2', 'b');
    join('s1', room, rooms.topic('other'));
    join('s2', room);
    join('s1', room); // already in: the adapter emits nothing
    expect(await devices()).toEqual(['a', 'b']);
    // A session replaced on this instance: for a moment the device has two sockets in the room.
    connect('s3', 'a');
    join('s3', room);
    expect(await devices()).toEqual(['a', 'b']);
    leave('s1', room);
    expect(await devices()).toEqual(['a', 'b']);
    leave('s3', room);
    expect(await devices()).toEqual(['b']);
    leave('s3', room); // gone already
    leave('s2', room);
    expect(await devices()).toEqual([]);
    expect(await channel.topicDevices('other')).toEqual(['a']);
  });

  it('finds the device of a socket that joined before its session was known, once it is', async () => {
    join('early', room);
    expect(await devices()).toEqual([]);
    connect('early', 'late');
    expect(await devices()).toEqual(['late']);
    expect(await devices()).toEqual(['late']);
    leave('early', room);
    expect(await devices()).toEqual([]);
    // One that leaves before it was ever looked up leaves nothing behind either.
    join('brief', room);
    leave('brief', room);
    connect('brief', 'never');
    expect(await devices()).toEqual([]);
  });
});
