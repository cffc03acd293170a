# The Koa service's image, in two stages: the build stage compiles TypeScript with every
# dependency; the runtime stage holds only production dependencies and dist/, runs as the
# image's non-root `node` user (uid 1000, gid 1000) and carries no secret: in compose, the
# secrets arrive at run time through the Vault Agent's files on a shared tmpfs.
# No `# syntax=` line: BuildKit would pull that frontend image, and offline engines have no
# registry. NODE_IMAGE is the official image unless the project's engine names its stand-in.
ARG NODE_IMAGE=node:22-alpine

FROM ${NODE_IMAGE} AS build
WORKDIR /app
COPY package.json package-lock.json ./
RUN npm ci
COPY tsconfig.json tsconfig.build.json ./
COPY service/src ./service/src
# tsc -p tsconfig.build.json: service/src -> dist/ (dist/main.js)
RUN npm run build

FROM ${NODE_IMAGE} AS runtime
ENV NODE_ENV=production
WORKDIR /app
COPY package.json package-lock.json ./
RUN npm ci --omit=dev && npm cache clean --force
COPY --from=build /app/dist ./dist
USER node
EXPOSE 3000
CMD ["node", "dist/main.js"]
