// Reads silver.events' live files (paths on stdin, from iceread.py) with
// DuckDB, per hour, and checks ids once; optional argv[2]: a file of accepted
// ids (one per line) to compare with; argv[3]: a glob to read naively too.
import { DuckDBInstance } from '@duckdb/node-api';
import { readFileSync } from 'fs';
const files = readFileSync(0, 'utf8').split('\n').filter(Boolean);
const db = await DuckDBInstance.create(':memory:');
const c = await db.connect();
const list = '[' + files.map(f => `'${f}'`).join(',') + ']';
const q = async (sql) => (await c.runAndReadAll(sql)).getRowObjects();
const tot = await q(`SELECT count(*)::BIGINT n, count(DISTINCT event_id)::BIGINT ids FROM read_parquet(${list})`);
console.log(`live files ${files.length}: rows ${tot[0].n}, distinct ids ${tot[0].ids}`);
const hours = await q(`SELECT date_trunc('hour', occurred_at)::VARCHAR h, count(*)::BIGINT n FROM read_parquet(${list}) GROUP BY 1 ORDER BY 1`);
console.log('per hour: ' + hours.map(r => `${r.h.slice(0,13)}h=${r.n}`).join(' '));
if (process.argv[2]) {
  await c.run(`CREATE TABLE acc AS SELECT column0 AS id FROM read_csv('${process.argv[2]}', header=false, columns={'column0':'VARCHAR'})`);
  const d = await q(`SELECT (SELECT count(*) FROM acc)::BIGINT accepted,
    (SELECT count(*) FROM acc WHERE id NOT IN (SELECT event_id FROM read_parquet(${list})))::BIGINT missing,
    (SELECT count(*) FROM (SELECT event_id FROM read_parquet(${list}) GROUP BY 1 HAVING count(*) > 1))::BIGINT doubled,
    (SELECT count(*) FROM read_parquet(${list}) WHERE event_id NOT IN (SELECT id FROM acc))::BIGINT unexpected`);
  console.log(`accepted ${d[0].accepted}: missing ${d[0].missing}, doubled ${d[0].doubled}, not accepted ${d[0].unexpected}`);
}
if (process.argv[3]) {
  const g = await q(`SELECT count(*)::BIGINT n, count(DISTINCT event_id)::BIGINT ids FROM read_parquet('${process.argv[3]}')`);
  console.log(`naive glob ${process.argv[3]}: rows ${g[0].n}, distinct ids ${g[0].ids}`);
}
