// The cluster project's files: 30 s per test (a round trip per partition, the event floors).
jest.setTimeout(30_000);
