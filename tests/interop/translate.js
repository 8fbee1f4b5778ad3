// A client in another language: loads proto/tarjama/v1/tarjama.proto at run time (no generated
// code) and calls Translate. Usage: node translate.js HOST:PORT < article.txt  → response JSON.
const path = require("path");
const grpc = require("@grpc/grpc-js");
const protoLoader = require("@grpc/proto-loader");

const protoRoot = path.resolve(__dirname, "..", "..", "proto");
const definition = protoLoader.loadSync("tarjama/v1/tarjama.proto", {
  includeDirs: [protoRoot],
  keepCase: true,
  enums: String,
  defaults: true,
});
const tarjama = grpc.loadPackageDefinition(definition).tarjama.v1;
const client = new tarjama.Translator(process.argv[2], grpc.credentials.createInsecure());

let text = "";
process.stdin.setEncoding("utf8");
process.stdin.on("data", (chunk) => (text += chunk));
process.stdin.on("end", () => {
  client.Translate({ id: "from-node", text }, { deadline: Date.now() + 60000 }, (err, response) => {
    if (err) {
      console.error(`${grpc.status[err.code]}: ${err.details}`);
      process.exit(1);
    }
    console.log(JSON.stringify(response));
  });
});
