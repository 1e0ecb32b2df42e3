// The scenario suite's weights generator writes files the format sniffer recognises, at
// the size asked for.
import assert from 'node:assert/strict';
import { readFileSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { after, test } from 'node:test';
import { detectFormat } from '../../daemon/sensors/weights/format.js';
import { makeWeights, type WeightsFormat } from '../helpers/model.js';
import { tempDir } from '../helpers/redline.js';

const tmp = tempDir();
after(() => tmp.cleanup());

for (const format of ['safetensors', 'gguf', 'pytorch-zip'] as WeightsFormat[]) {
  test(`${format}: recognised, and about the size asked for`, () => {
    const path = makeWeights(join(tmp.dir, `w.${format}`), format, 3);
    const size = statSync(path).size;
    assert.ok(size >= 3 << 20 && size < (3 << 20) + 64 * 1024, `${size}`);
    assert.equal(detectFormat(readFileSync(path).subarray(0, 4096), size).format, format);
  });
}
