// What the serving probe makes of answers: which look like an inference API, the text of a
// completion, and the canary comparison.
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { canaryAsks, compareCanary, completionText, looksLikeInference } from '../../daemon/sensors/ports/ask.js';

describe('inference answers', () => {
  test('an OpenAI-style model list, and a JSON health or card naming a model or engine', () => {
    assert.equal(looksLikeInference('/v1/models', 200, '{"object":"list","data":[{"id":"Qwen2.5-7B","object":"model"}]}'), true);
    assert.equal(looksLikeInference('/health', 200, '{"status":"ok","model":"tiny"}'), true);
    assert.equal(looksLikeInference('/', 200, ' {"server": "llama.cpp"}'), true);
    // an error status is no answer
    assert.equal(looksLikeInference('/v1/models', 503, '{"object":"list","data":[]}'), false);
  });

  test('a web page that links a file named model is no inference API', () => {
    const listing = '<!DOCTYPE HTML><html><body><ul><li><a href="model.safetensors">model.safetensors</a></li><li><a href="llama-notes.txt">llama-notes.txt</a></li></ul></body></html>';
    assert.equal(looksLikeInference('/', 200, listing), false);
    assert.equal(looksLikeInference('/health', 200, 'OK model'), false);
    assert.equal(looksLikeInference('/v1/models', 404, '{"error":"not found"}'), false);
  });
});

describe('the canary', () => {
  test('asks a completion, then a chat completion, greedy and short, naming the model', () => {
    const [c, chat] = canaryAsks('tiny');
    assert.equal(c?.method, 'POST');
    assert.equal(c?.path, '/v1/completions');
    const body = JSON.parse(c?.body ?? '{}') as Record<string, unknown>;
    assert.equal(body.model, 'tiny');
    assert.equal(body.temperature, 0);
    assert.ok(Number(body.max_tokens) > 0 && Number(body.max_tokens) <= 16);
    assert.equal(chat?.path, '/v1/chat/completions');
    assert.ok(Array.isArray((JSON.parse(chat?.body ?? '{}') as { messages?: unknown }).messages));
    assert.equal('model' in (JSON.parse(canaryAsks(undefined)[0]?.body ?? '{}') as object), false);
  });

  test('the text of a completion and of a chat completion; none from an error or a page', () => {
    assert.equal(completionText(200, '{"choices":[{"index":0,"text":" Paris, and"}]}'), ' Paris, and');
    assert.equal(completionText(200, '{"choices":[{"message":{"role":"assistant","content":"Paris"}}]}'), 'Paris');
    assert.equal(completionText(500, '{"choices":[{"text":"x"}]}'), null);
    assert.equal(completionText(200, '<html>'), null);
    assert.equal(completionText(null, ''), null);
  });

  test('same, different, or unknown when either side gave no text', () => {
    assert.equal(compareCanary(' Paris, and', 'Paris, and '), 'same');
    assert.equal(compareCanary('Paris', 'Lyon'), 'different');
    assert.equal(compareCanary('Paris', null), 'unknown');
    assert.equal(compareCanary(null, 'Paris'), 'unknown');
    assert.equal(compareCanary('  ', '  '), 'unknown');
  });
});
