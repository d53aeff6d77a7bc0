// Run once by the `mongo-init` service of docker-compose.yml (mongosh, connected to mongo1):
// initiates the replica set rs0 of mongo1..mongo3 unless it is initiated already, then waits
// until it has a primary. Exits non-zero when no primary appears within two minutes, so the
// API and scheduler containers, which wait for this service to succeed, do not start.
const config = {
  _id: "rs0",
  members: [
    { _id: 0, host: "mongo1:27017", priority: 2 },
    { _id: 1, host: "mongo2:27017", priority: 1 },
    { _id: 2, host: "mongo3:27017", priority: 1 },
  ],
};

try {
  const status = rs.status();
  print(`replica set ${status.set} already initiated`);
} catch (error) {
  if (error.codeName !== "NotYetInitialized") {
    throw error;
  }
  printjson(rs.initiate(config));
}

const deadline = Date.now() + 120 * 1000;
for (;;) {
  let members = [];
  try {
    members = rs.status().members || [];
  } catch (error) {
    print(`waiting for the replica set: ${error.codeName || error.message}`);
  }
  const primary = members.find((member) => member.stateStr === "PRIMARY");
  if (primary) {
    print(`primary: ${primary.name}`);
    break;
  }
  if (Date.now() > deadline) {
    print("no primary after 120 s: " + JSON.stringify(members.map((m) => [m.name, m.stateStr])));
    quit(1);
  }
  sleep(1000);
}
