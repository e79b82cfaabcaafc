// The fake upstream in its own process for benchmarks (so its CPU is not the harness's), driven over IPC:
// it sends {port} when listening and answers 'stats' with the number of 2xx responses it completed.
import { startFakeUpstream } from '../test/support/fake-upstream.js';

const fake = await startFakeUpstream({ record: false, replyTokens: 16 });
const port = Number(new URL(fake.url).port);
process.send?.({ type: 'ready', port });
process.on('message', (message: unknown) => {
  if (message === 'stats') process.send?.({ type: 'stats', served: fake.served });
  if (message === 'stop') void fake.close().then(() => process.exit(0));
});
process.on('disconnect', () => void fake.close().then(() => process.exit(0)));
