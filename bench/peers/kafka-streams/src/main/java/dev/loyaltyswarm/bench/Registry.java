package dev.loyaltyswarm.bench;

import java.io.IOException;
import java.net.URI;
import java.net.http.HttpClient;
import java.net.http.HttpRequest;
import java.net.http.HttpResponse;
import java.time.Duration;
import java.util.concurrent.ConcurrentHashMap;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import org.apache.avro.Schema;

/**
 * The Confluent schema registry, as far as the peer needs it: writer schemas by id
 * (`GET /schemas/ids/{id}`, cached per id for the life of the process, as the agents do)
 * and registering the output schema (`POST /subjects/{subject}/versions`).
 */
final class Registry {
    private static final String CONTENT_TYPE = "application/vnd.schemaregistry.v1+json";
    private final String url;
    private final HttpClient http = HttpClient.newBuilder().connectTimeout(Duration.ofSeconds(10)).build();
    private final ObjectMapper json = new ObjectMapper();
    private final ConcurrentHashMap<Integer, Schema> byId = new ConcurrentHashMap<>();

    Registry(String url) {
        this.url = url.endsWith("/") ? url.substring(0, url.length() - 1) : url;
    }

    /** The writer schema with this id. */
    Schema schema(int id) {
        Schema cached = byId.get(id);
        if (cached != null) {
            return cached;
        }
        return byId.computeIfAbsent(id, this::fetch);
    }

    private Schema fetch(int id) {
        try {
            HttpRequest request = HttpRequest.newBuilder(URI.create(url + "/schemas/ids/" + id))
                    .timeout(Duration.ofSeconds(30)).header("Accept", CONTENT_TYPE).GET().build();
            HttpResponse<String> response = http.send(request, HttpResponse.BodyHandlers.ofString());
            if (response.statusCode() != 200) {
                throw new IllegalStateException("schema id " + id + ": HTTP " + response.statusCode() + " "
                        + response.body());
            }
            JsonNode body = json.readTree(response.body());
            return new Schema.Parser().parse(body.get("schema").asText());
        } catch (IOException e) {
            throw new IllegalStateException("schema id " + id + ": " + e, e);
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
            throw new IllegalStateException("interrupted fetching schema id " + id, e);
        }
    }

    /** Register `schema` under `subject` and return its id. */
    int register(String subject, Schema schema) throws IOException, InterruptedException {
        String body = json.writeValueAsString(java.util.Map.of("schema", schema.toString()));
        HttpRequest request = HttpRequest.newBuilder(URI.create(url + "/subjects/" + subject + "/versions"))
                .timeout(Duration.ofSeconds(30)).header("Content-Type", CONTENT_TYPE)
                .POST(HttpRequest.BodyPublishers.ofString(body)).build();
        HttpResponse<String> response = http.send(request, HttpResponse.BodyHandlers.ofString());
        if (response.statusCode() != 200) {
            throw new IOException("registering " + subject + ": HTTP " + response.statusCode() + " " + response.body());
        }
        int id = json.readTree(response.body()).get("id").asInt();
        byId.putIfAbsent(id, schema);
        return id;
    }
}
