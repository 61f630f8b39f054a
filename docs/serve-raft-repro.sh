V=/work/main/build/rs/services/vectron/vectron
D=$1
for it in 1 2 3 4 5 6; do
  $V serve --data-dir $D --rest-port 18483 --grpc-port 0 --shards 2 > r.log 2>&1 &
  P=$!
  for t in $(seq 50); do grep -q "vectron serve:" r.log && break; sleep 0.05; done
  curl -s localhost:18483/v1/collections -d '{"name":"c","dimension":2,"distance":"dot","index_mode":"async"}' >/dev/null
  curl -s localhost:18483/v1/collections -d '{"name":"e","dimension":2,"distance":"dot"}' >/dev/null
  for j in 1 2 3 4 5 6 7 8; do curl -s localhost:18483/v1/collections/c/points -d "{\"points\":[{\"id\":\"a$j$it\",\"vector\":[1,$j]},{\"id\":\"b$j$it\",\"vector\":[2,$j]}]}" >/dev/null & curl -s localhost:18483/v1/collections/e/points -d "{\"points\":[{\"id\":\"a$j$it\",\"vector\":[1,$j]}]}" >/dev/null & done
  sleep 0.02; kill -9 $P; wait $P 2>/dev/null; wait
  $V serve --data-dir $D --rest-port 18483 --grpc-port 0 --shards 2 > r2.log 2>&1 &
  P=$!
  for t in $(seq 100); do grep -q "ready at" r2.log && break; sleep 0.01; done
  kill -TERM $P; wait $P; echo "iter $it rc $?"
  grep -q "double\|Abort" r2.log && { cat r2.log | tail -5; break; }
done
