import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { Queue } from 'bullmq';
import { guardQueue } from '../../src/jobs/job-guard.js';
import { sharedRedis } from '../harness/redis.js';

describe('BullMQ job guard against a real queue on Redis', () => {
  let queue: Queue;

  before(async () => {
    const endpoint = await sharedRedis('plain');
    const { hostname, port } = new URL(endpoint.url);
    queue = guardQueue(
      new Queue(`reminders-${process.pid}`, { connection: { host: hostname, port: Number(port), db: 7 } }),
    );
    await queue.obliterate({ force: true });
  });
  after(async () => {
    await queue.obliterate({ force: true });
    await queue.close();
  });

  const refused: [string, unknown][] = [
    ['a name', { patientName: 'Jane Doe', appointmentId: 'a-1' }],
    ['a name under a plain field name', { payload: { name: 'Jane Doe' } }],
    ['an SSN field', { ssn: '078-05-1120' }],
    ['an SSN value', { note: 'patient 078-05-1120 called' }],
    ['a date of birth field', { dob: '1980-02-03' }],
    ['a date of birth value', { reminderFor: 'born 02/03/1980' }],
  ];

  for (const [what, data] of refused) {
    test(`a job holding ${what} is refused with ERR_JOB_DATA_PHI before it reaches Redis`, async () => {
      const before = await queue.count();
      await assert.rejects(queue.add('send-reminder', data as never), (error: Error & { code?: string }) => {
        assert.equal(error.code, 'ERR_JOB_DATA_PHI');
        assert.ok(
          !error.message.includes('Jane') && !error.message.includes('078-05'),
          'the message holds no value',
        );
        return true;
      });
      assert.equal(await queue.count(), before, 'no job was added');
    });
  }

  test('a job holding ids and references is accepted and queued', async () => {
    const job = await queue.add('send-reminder', {
      appointmentId: 'a-123',
      tenant: 'st-marys',
      taskId: 't-9',
    } as never);
    const stored = await queue.getJob(job.id!);
    assert.deepEqual(stored?.data, { appointmentId: 'a-123', tenant: 'st-marys', taskId: 't-9' });
  });

  test('a PHI-looking job id (part of Redis key names) is refused too', async () => {
    await assert.rejects(
      queue.add('send-reminder', { taskId: 't-1' } as never, { jobId: 'jane@example.org' } as never),
      {
        code: 'ERR_JOB_DATA_PHI',
      },
    );
  });

  test('addBulk with one bad job adds none of the batch', async () => {
    const before = await queue.count();
    await assert.rejects(
      queue.addBulk([
        { name: 'ok', data: { taskId: 't-2' } },
        { name: 'bad', data: { email: 'jane@example.org' } },
      ] as never),
      { code: 'ERR_JOB_DATA_PHI' },
    );
    assert.equal(await queue.count(), before);
  });
});
