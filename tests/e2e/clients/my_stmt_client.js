// MySQL server-side prepared statements for the e2e tests: mysql2's execute() sends
// COM_STMT_PREPARE once per statement text, then COM_STMT_EXECUTE with binary parameters.
// usage: node my_stmt_client.js NODE_MODULES PORT SECRET_FILE
// The secret (read from a file: command lines are exported) travels only as a bound
// parameter or as a literal in a statement's text. Prints "local_port P" and "done".
'use strict';
const fs = require('fs');
const path = require('path');

const mysql = require(path.join(process.argv[2], 'mysql2/promise'));
const port = Number(process.argv[3]);
const secret = fs.readFileSync(process.argv[4], 'utf8').trim();

async function expectError(promise, errno) {
  try {
    await promise;
  } catch (e) {
    if (e.errno === errno) return;
    throw e;
  }
  throw new Error(`expected error ${errno}`);
}

async function main() {
  const conn = await mysql.createConnection(
      {host: '127.0.0.1', port, user: 'root', database: 'test'});
  console.log('local_port', conn.connection.stream.localPort);
  await conn.query('DROP TABLE IF EXISTS stmt_orders');
  await conn.query('CREATE TABLE stmt_orders (id INT PRIMARY KEY, note VARCHAR(64))');
  const insert = 'INSERT INTO stmt_orders VALUES (?, ?)';
  await conn.execute(insert, [1, secret]);  // prepare + execute
  await expectError(conn.execute(insert, [1, secret]), 1062);  // cached: execute only
  const [rows] = await conn.execute('SELECT id, note FROM stmt_orders WHERE note = ?', [secret]);
  if (rows.length !== 1 || rows[0].id !== 1) throw new Error('unexpected rows');
  await expectError(conn.execute('SELECT * FROM missing_table WHERE k = ?', [secret]), 1146);
  conn.unprepare(insert);  // COM_STMT_CLOSE
  await conn.execute(`SELECT id FROM stmt_orders WHERE note <> '${secret}' AND id > ?`, [0]);
  await conn.end();
  console.log('done');
}

main().catch((e) => {
  console.error(e);
  process.exit(1);
});
