# syntax=docker/dockerfile:1
# The Koa service's image, in two stages: the build stage compiles TypeScript with every
# dependency; the runtime stage holds only production dependencies and dist/, runs as the
# image's non-root `node` user (uid 1000, gid 1000) and carries no secret: in compose, the
# secrets arrive at run time through the Vault Agent's files on a shared tmpfs.

FROM node:22-alpine AS build
WORKDIR /app
COPY package.json package-lock.json ./
RUN npm ci
COPY tsconfig.json tsconfig.build.json ./
COPY service/src ./service/src
# tsc -p tsconfig.build.json: service/src -> dist/ (dist/main.js)
RUN npm run build

FROM node:22-alpine AS runtime
ENV NODE_ENV=production
WORKDIR /app
COPY package.json package-lock.json ./
RUN npm ci --omit=dev && npm cache clean --force
COPY --from=build /app/dist ./dist
USER node
EXPOSE 3000
CMD ["node", "dist/main.js"]
