// A streamable HTTP MCP server of the TypeScript SDK, built as its docs
// recommend (createMcpExpressApp, whose express.json honours a request's
// charset), with the tools echo and delete; stateless, JSON answers. It
// prints "PORT <n>" once it listens on loopback.
import { McpServer } from '@modelcontextprotocol/sdk/server/mcp.js';
import { StreamableHTTPServerTransport } from '@modelcontextprotocol/sdk/server/streamableHttp.js';
import { createMcpExpressApp } from '@modelcontextprotocol/sdk/server/express.js';

const app = createMcpExpressApp();
app.post('/mcp', async (req, res) => {
  const server = new McpServer({ name: 'ts-express', version: '1' });
  server.tool('echo', async () => ({ content: [{ type: 'text', text: 'ECHO RAN' }] }));
  server.tool('delete', async () => ({ content: [{ type: 'text', text: 'DELETE RAN' }] }));
  const transport = new StreamableHTTPServerTransport({ sessionIdGenerator: undefined, enableJsonResponse: true });
  res.on('close', () => { transport.close(); server.close(); });
  await server.connect(transport);
  await transport.handleRequest(req, res, req.body);
});
const listener = app.listen(0, '127.0.0.1', () => console.log('PORT ' + listener.address().port));
